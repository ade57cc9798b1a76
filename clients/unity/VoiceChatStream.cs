// Korean Voice Q&A for Unity: ask a question and play the answer sentence by sentence, each as
// soon as it arrives (POST /send/text/<id>/stream or /send/audio/<id>/stream, Server-Sent Events).
//
// Add to a GameObject with an AudioSource; put VoiceChatSse.cs beside it. Then:
//   chat.AskText("부산까지 얼마나 걸려요?");          // or chat.AskAudio(wavBytes)
// Events arrive as they are written: OnHeard (what was heard or typed), OnSentence (each
// sentence of the answer), then OnDone or OnError. Desktop and mobile builds read the bytes as
// they come (DownloadHandlerScript.ReceiveData); WebGL builds get them only at the end.
using System;
using System.Collections;
using System.Collections.Generic;
using System.Text;
using UnityEngine;
using UnityEngine.Networking;

namespace VoiceQnA
{
    public class VoiceChatStream : MonoBehaviour
    {
        public string baseUrl = "http://localhost:5000";  // the page's server: http://host:7860/api
        public string apiKey = "";                        // API_KEY, when the server has one
        public string conversationId = "";                // empty: one is created on the first question
        public AudioSource speaker;

        public event Action<string> OnHeard;
        public event Action<int, string> OnSentence;
        public event Action<string> OnDone;     // the whole answer
        public event Action<string> OnError;

        readonly Queue<AudioClip> toPlay = new Queue<AudioClip>();

        public void AskText(string question)
        {
            string json = "{\"message\": \"" + Escape(question) + "\", \"role\": \"user\"}";
            StartCoroutine(Ask("text", Encoding.UTF8.GetBytes(json), "application/json"));
        }

        public void AskAudio(byte[] wav)
        {
            StartCoroutine(Ask("audio", wav, "audio/wav"));  // the raw recording as the body
        }

        IEnumerator Ask(string kind, byte[] body, string contentType)
        {
            if (string.IsNullOrEmpty(conversationId))
                yield return CreateConversation();
            var request = new UnityWebRequest(baseUrl + "/send/" + kind + "/" + conversationId + "/stream", "POST");
            request.uploadHandler = new UploadHandlerRaw(body);
            var events = new SseDownloadHandler(this);
            request.downloadHandler = events;
            request.SetRequestHeader("Content-Type", contentType);
            request.SetRequestHeader("Accept", "text/event-stream");
            if (apiKey.Length > 0) request.SetRequestHeader("Authorization", "Bearer " + apiKey);
            yield return request.SendWebRequest();
            if (request.result != UnityWebRequest.Result.Success && !events.Finished)
                Handle(new TurnEvent("error", "{\"error\": \"" + Escape(request.error + " " + events.Body) + "\"}"));
            request.Dispose();
        }

        IEnumerator CreateConversation()
        {
            var request = new UnityWebRequest(baseUrl + "/create", "POST");
            request.uploadHandler = new UploadHandlerRaw(Encoding.UTF8.GetBytes("{}"));
            request.downloadHandler = new DownloadHandlerBuffer();
            request.SetRequestHeader("Content-Type", "application/json");
            if (apiKey.Length > 0) request.SetRequestHeader("Authorization", "Bearer " + apiKey);
            yield return request.SendWebRequest();
            conversationId = new TurnEvent("created", request.downloadHandler.text).Field("id") ?? "";
            request.Dispose();
        }

        // Called on the main thread (ReceiveData runs there) for every event of the stream.
        void Handle(TurnEvent e)
        {
            switch (e.Name)
            {
                case "transcript": if (OnHeard != null) OnHeard(e.Text); break;
                case "sentence": if (OnSentence != null) OnSentence(e.Index, e.Text); break;
                case "audio": Queue(Convert.FromBase64String(e.Audio), e.Index); break;
                case "done": if (OnDone != null) OnDone(e.Text); break;
                case "error": if (OnError != null) OnError(e.Error); Debug.LogWarning("Voice Q&A: " + e.Error); break;
            }
        }

        void Queue(byte[] wav, int index)
        {
            int channels, rate;
            float[] samples = Wav.Decode(wav, out channels, out rate);
            AudioClip clip = AudioClip.Create("answer-" + index, samples.Length / channels, channels, rate, false);
            clip.SetData(samples, 0);
            toPlay.Enqueue(clip);
        }

        void Update()
        {
            // One sentence after the other, without gaps: the next starts when the speaker is free.
            if (speaker != null && !speaker.isPlaying && toPlay.Count > 0)
            {
                speaker.clip = toPlay.Dequeue();
                speaker.Play();
            }
        }

        static string Escape(string s)
        {
            return s.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n").Replace("\r", "");
        }

        // Receives the response as it arrives and hands each whole event to the component.
        class SseDownloadHandler : DownloadHandlerScript
        {
            readonly VoiceChatStream owner;
            readonly SseParser parser = new SseParser();
            readonly StringBuilder body = new StringBuilder();
            public bool Finished;

            public SseDownloadHandler(VoiceChatStream owner) : base(new byte[16 * 1024])
            {
                this.owner = owner;
            }

            public string Body { get { return body.ToString(); } }  // a JSON error before the stream started

            protected override bool ReceiveData(byte[] data, int dataLength)
            {
                if (body.Length < 4096) body.Append(Encoding.UTF8.GetString(data, 0, dataLength));
                foreach (TurnEvent e in parser.Feed(data, dataLength))
                {
                    Finished |= e.Name == "done" || e.Name == "error";
                    owner.Handle(e);
                }
                return true;
            }
        }
    }
}
