// Runs clients/unity/VoiceChatSse.cs (the Unity client's stream reading) outside Unity against
// a real server: POSTs a question to a streaming route and feeds the response to SseParser in
// small, odd-sized chunks (as a phone's network delivers it), decoding each sentence's WAV.
// Usage: mono harness.exe <stream-url> <json-body> <chunk-bytes>
using System;
using System.IO;
using System.Net.Http;
using System.Text;
using VoiceQnA;

static class Harness
{
    static int Main(string[] args)
    {
        var client = new HttpClient();
        var request = new HttpRequestMessage(HttpMethod.Post, args[0]);
        request.Content = new StringContent(args[1], Encoding.UTF8, "application/json");
        HttpResponseMessage response = client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead).Result;
        Console.WriteLine("status " + (int)response.StatusCode);
        Stream body = response.Content.ReadAsStreamAsync().Result;
        var parser = new SseParser();
        var buffer = new byte[int.Parse(args[2])];
        int read;
        while ((read = body.Read(buffer, 0, buffer.Length)) > 0)
        {
            foreach (TurnEvent e in parser.Feed(buffer, read))
            {
                if (e.Name == "audio")
                {
                    int channels, rate;
                    float[] samples = Wav.Decode(Convert.FromBase64String(e.Audio), out channels, out rate);
                    Console.WriteLine("audio " + e.Index + " " + samples.Length / channels + " " + rate);
                }
                else if (e.Name == "sentence")
                    Console.WriteLine("sentence " + e.Index + " " + e.Text);
                else if (e.Name == "error")
                    Console.WriteLine("error " + e.Field("status") + " " + e.Error);
                else
                    Console.WriteLine(e.Name + " " + e.Text);
            }
        }
        return 0;
    }
}
