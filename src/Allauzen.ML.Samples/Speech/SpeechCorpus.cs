using System.Buffers.Binary;

namespace Allauzen.ML.Samples.Speech;

/// <summary>One labelled recording.</summary>
public sealed record Recording(string Audio, string Label, int Group);

/// <summary>
/// The sample's corpus: a folder of WAVs (one sub-folder per class), or a French/English corpus synthesised with
/// espeak-ng when it is installed, else two "voices" cut from the shipped utterance.
/// </summary>
public static class SpeechCorpus
{
    private static readonly string[] French =
    [
        "Bonjour, comment allez-vous aujourd'hui ?", "Le chat dort sur le canapé du salon.", "Nous partirons demain matin pour Lyon.",
        "Il fait très beau depuis le début de la semaine.", "La réunion commence à dix heures précises.", "Pouvez-vous répéter la question, s'il vous plaît ?",
        "Les enfants jouent dans le jardin après l'école.", "J'ai acheté du pain et du fromage au marché.", "Le train pour Marseille est en retard.",
        "Cette bibliothèque possède des milliers de livres anciens.", "Elle apprend le piano depuis trois ans.", "Le musée est fermé le mardi.",
        "Nous avons mangé une excellente soupe de légumes.", "Le professeur explique la leçon avec patience.", "Il faut éteindre la lumière en sortant.",
        "Mon frère travaille dans une petite entreprise.",
    ];

    private static readonly string[] English =
    [
        "Hello, how are you doing today?", "The cat is sleeping on the living room sofa.", "We will leave for London tomorrow morning.",
        "The weather has been lovely since the start of the week.", "The meeting starts at ten o'clock sharp.", "Could you repeat the question, please?",
        "The children play in the garden after school.", "I bought some bread and cheese at the market.", "The train to Manchester is running late.",
        "This library holds thousands of old books.", "She has been learning the piano for three years.", "The museum is closed on Tuesdays.",
        "We had an excellent vegetable soup.", "The teacher explains the lesson with patience.", "Please switch off the light when you leave.",
        "My brother works for a small company.",
    ];

    /// <summary>Recordings of a folder: &lt;folder&gt;/&lt;label&gt;/*.wav; the group of a file is its index within its class.</summary>
    public static List<Recording> FromFolder(string folder)
    {
        var list = new List<Recording>();
        foreach (var dir in Directory.GetDirectories(folder).Order(StringComparer.Ordinal))
        {
            var files = Directory.GetFiles(dir, "*.wav").Order(StringComparer.Ordinal).ToArray();
            for (int i = 0; i < files.Length; i++)
                list.Add(new Recording(files[i], Path.GetFileName(dir), i));
        }
        if (list.Select(r => r.Label).Distinct().Count() < 2)
            throw new Common.UsageException($"--data {folder}: expected one sub-folder of WAV files per class, at least two classes.");
        return list;
    }

    /// <summary>True when espeak-ng can be run.</summary>
    public static bool HasEspeak()
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("espeak-ng", "--version") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false });
            p!.WaitForExit();
            return p.ExitCode == 0;
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>
    /// Synthesises with espeak-ng, as 22.05 kHz WAVs (the featurizer resamples them). Task "voice" (default): 16 French
    /// and 16 English sentences, each spoken by four espeak-ng voices (variants m1, m3, f1, f4), label = voice.
    /// Task "language": the same sentences with the default voice at 2 speeds × 2 pitches, label = fr/en.
    /// Group = sentence, so that train and test never share a sentence.
    /// </summary>
    public static List<Recording> Synthesize(string folder, string task)
    {
        var list = new List<Recording>();
        int group = 0;
        foreach (var (lang, voice, sentences) in new[] { ("fr", "fr", French), ("en", "en-gb", English) })
        {
            for (int s = 0; s < sentences.Length; s++, group++)
            {
                var variants = task == "language"
                    ? new[] { (lang, voice, 140, 35), (lang, voice, 140, 65), (lang, voice, 180, 35), (lang, voice, 180, 65) }
                    : new[] { "m1", "m3", "f1", "f4" }.Select(v => (v, $"{voice}+{v}", 160, 50)).ToArray();
                foreach (var (label, v, speed, pitch) in variants)
                {
                    Directory.CreateDirectory(Path.Combine(folder, label));
                    string path = Path.Combine(folder, label, $"{lang}{s:D2}-{v.Replace('+', '_')}-s{speed}-p{pitch}.wav");
                    if (!File.Exists(path))
                    {
                        var psi = new ProcessStartInfo("espeak-ng") { UseShellExecute = false, RedirectStandardError = true };
                        foreach (var a in new[] { "-v", v, "-s", speed.ToString(), "-p", pitch.ToString(), "-w", path + ".tmp", sentences[s] })
                            psi.ArgumentList.Add(a);
                        using var p = Process.Start(psi)!;
                        p.WaitForExit();
                        if (p.ExitCode != 0)
                            throw new InvalidOperationException($"espeak-ng failed ({p.ExitCode}): {p.StandardError.ReadToEnd()}");
                        File.Move(path + ".tmp", path, overwrite: true);
                    }
                    list.Add(new Recording(path, label, group));
                }
            }
        }
        return list;
    }

    /// <summary>
    /// Without espeak-ng: 1.5 s excerpts of the shipped utterance, as spoken ("voice-a") and played 25 % faster, which
    /// raises the pitch ("voice-b"). Group = excerpt position.
    /// </summary>
    public static List<Recording> FromShippedUtterance(string wav, string folder)
    {
        var (x, rate) = ReadPcm16(wav);
        var list = new List<Recording>();
        Directory.CreateDirectory(Path.Combine(folder, "voice-a"));
        Directory.CreateDirectory(Path.Combine(folder, "voice-b"));
        int len = rate * 3 / 2, hop = rate / 8, g = 0;
        for (int start = 0; start + len * 5 / 4 <= x.Length; start += hop, g++)
        {
            string a = Path.Combine(folder, "voice-a", $"{g:D2}.wav");
            WritePcm16(a, x.AsSpan(start, len), rate);
            // Same samples declared at 1.25 × the rate: 25 % faster and higher once resampled to 16 kHz.
            string b = Path.Combine(folder, "voice-b", $"{g:D2}.wav");
            WritePcm16(b, x.AsSpan(start, len * 5 / 4), rate * 5 / 4);
            list.Add(new Recording(a, "voice-a", g));
            list.Add(new Recording(b, "voice-b", g));
        }
        return list;
    }

    /// <summary>Reads a mono PCM16 WAV with a canonical 44-byte header (the shipped file).</summary>
    private static (short[] Samples, int Rate) ReadPcm16(string path)
    {
        var b = File.ReadAllBytes(path);
        int rate = BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(24));
        int dataSize = BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(40));
        var x = new short[dataSize / 2];
        for (int i = 0; i < x.Length; i++)
            x[i] = BinaryPrimitives.ReadInt16LittleEndian(b.AsSpan(44 + 2 * i));
        return (x, rate);
    }

    /// <summary>Writes a mono PCM16 WAV (temp file then rename).</summary>
    public static void WritePcm16(string path, ReadOnlySpan<short> x, int rate)
    {
        var b = new byte[44 + 2 * x.Length];
        "RIFF"u8.CopyTo(b);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(4), b.Length - 8);
        "WAVEfmt "u8.CopyTo(b.AsSpan(8));
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(16), 16);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(20), 1);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(22), 1);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(24), rate);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(28), rate * 2);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(32), 2);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(34), 16);
        "data"u8.CopyTo(b.AsSpan(36));
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(40), 2 * x.Length);
        for (int i = 0; i < x.Length; i++)
            BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(44 + 2 * i), x[i]);
        var tmp = path + ".tmp";
        File.WriteAllBytes(tmp, b);
        File.Move(tmp, path, overwrite: true);
    }
}
