using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Tests.Foton;

/// <summary>Reads the golden JSON files of Fixtures/Foton (copied from the shared fixtures; see their README).</summary>
internal static class FotonFixture
{
    public static JsonElement Load(string file)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "Foton", file);
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.Clone();
    }

    /// <summary>A nested JSON array of numbers as a tensor of <paramref name="dtype"/>.</summary>
    public static Tensor Tensor(JsonElement e, ScalarType dtype = ScalarType.Float64)
    {
        var shape = new List<long>();
        var cur = e;
        while (cur.ValueKind == JsonValueKind.Array)
        {
            shape.Add(cur.GetArrayLength());
            if (cur.GetArrayLength() == 0)
                break;
            cur = cur[0];
        }
        var values = new List<double>();
        Flatten(e, values);
        return torch.tensor(values.ToArray(), [.. shape]).to(dtype);
    }

    private static void Flatten(JsonElement e, List<double> values)
    {
        if (e.ValueKind == JsonValueKind.Array)
        {
            foreach (var c in e.EnumerateArray())
                Flatten(c, values);
        }
        else
        {
            values.Add(e.GetDouble());
        }
    }

    public static Tensor[] Tensors(JsonElement e, ScalarType dtype = ScalarType.Float64) =>
        [.. e.EnumerateArray().Select(x => Tensor(x, dtype))];

    public static double MaxAbsDiff(Tensor a, Tensor b) => (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max().ToDouble();
}
