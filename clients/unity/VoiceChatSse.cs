// Korean Voice Q&A for Unity: reading a streamed turn. Plain C# (no UnityEngine), so it is
// tested outside Unity (tests/test_unity_client.py compiles it with Mono and runs it against
// the real server).
//
//   SseParser  bytes of a text/event-stream response, in chunks of any size -> events
//   Wav        a 16-bit PCM WAV file -> float samples for AudioClip.SetData
//   TurnEvent  one event: Name is transcript, sentence, audio, done or error; Data its JSON
using System;
using System.Collections.Generic;
using System.Text;
using System.Text.RegularExpressions;

namespace VoiceQnA
{
    public sealed class TurnEvent
    {
        public readonly string Name;
        public readonly string Data;

        public TurnEvent(string name, string data)
        {
            Name = name;
            Data = data;
        }

        // The few fields a client needs, read without a JSON library (JsonUtility cannot read
        // these shapes). The server writes compact JSON, one object per event.
        public int Index { get { return int.Parse(Field("index") ?? "-1"); } }
        public string Text { get { return Field("text"); } }
        public string Audio { get { return Field("audio"); } }
        public string Error { get { return Field("error"); } }

        public string Field(string name)
        {
            Match match = Regex.Match(Data, "\"" + Regex.Escape(name) + "\":\\s*(\"((?:[^\"\\\\]|\\\\.)*)\"|(-?[0-9.]+))");
            if (!match.Success) return null;
            return match.Groups[2].Success ? Unescape(match.Groups[2].Value) : match.Groups[3].Value;
        }

        static string Unescape(string s)
        {
            return Regex.Unescape(s);
        }
    }

    // Splits a Server-Sent Events byte stream into events. Bytes may arrive in any chunks, even
    // in the middle of a UTF-8 character: they are kept until a whole line is there.
    public sealed class SseParser
    {
        readonly List<byte> pending = new List<byte>();
        readonly StringBuilder data = new StringBuilder();
        string name = "message";

        public List<TurnEvent> Feed(byte[] bytes, int count)
        {
            var events = new List<TurnEvent>();
            for (int i = 0; i < count; i++)
            {
                if (bytes[i] != (byte)'\n')
                {
                    pending.Add(bytes[i]);
                    continue;
                }
                string line = Encoding.UTF8.GetString(pending.ToArray()).TrimEnd('\r');
                pending.Clear();
                TurnEvent finished = Line(line);
                if (finished != null) events.Add(finished);
            }
            return events;
        }

        TurnEvent Line(string line)
        {
            if (line.Length == 0)
            {
                if (data.Length == 0) return null;
                var finished = new TurnEvent(name, data.ToString());
                name = "message";
                data.Length = 0;
                return finished;
            }
            if (line.StartsWith(":")) return null;  // a keep-alive comment
            if (line.StartsWith("event:")) name = line.Substring(6).Trim();
            else if (line.StartsWith("data:"))
            {
                if (data.Length > 0) data.Append('\n');
                data.Append(line.Substring(5).TrimStart());
            }
            return null;
        }
    }

    public static class Wav
    {
        // Samples (interleaved when stereo, in [-1, 1]), channels and sample rate of a 16-bit PCM WAV.
        public static float[] Decode(byte[] wav, out int channels, out int rate)
        {
            if (wav.Length < 12 || Encoding.ASCII.GetString(wav, 0, 4) != "RIFF" || Encoding.ASCII.GetString(wav, 8, 4) != "WAVE")
                throw new FormatException("not a WAV file");
            channels = 1;
            rate = 16000;
            int bits = 16;
            int at = 12;
            while (at + 8 <= wav.Length)
            {
                string chunk = Encoding.ASCII.GetString(wav, at, 4);
                int size = BitConverter.ToInt32(wav, at + 4);
                int body = at + 8;
                if (chunk == "fmt ")
                {
                    channels = BitConverter.ToInt16(wav, body + 2);
                    rate = BitConverter.ToInt32(wav, body + 4);
                    bits = BitConverter.ToInt16(wav, body + 14);
                }
                else if (chunk == "data")
                {
                    if (bits != 16) throw new FormatException("only 16-bit PCM WAV is read here");
                    size = Math.Min(size < 0 ? int.MaxValue : size, wav.Length - body);  // a streamed WAV may say "unknown"
                    var samples = new float[size / 2];
                    for (int i = 0; i < samples.Length; i++)
                        samples[i] = BitConverter.ToInt16(wav, body + 2 * i) / 32768f;
                    return samples;
                }
                at = body + size + (size & 1);
            }
            throw new FormatException("the WAV file has no data chunk");
        }
    }
}
