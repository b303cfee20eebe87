using System.Text.Json;

namespace Allauzen.ML.Tests.Lipschitz;

/// <summary>Reads the golden JSON fixtures (float32-representable tensors stored as float64 decimals).</summary>
internal static class Golden
{
    private static readonly Lazy<JsonDocument> BoundsDoc = new(() => Load("golden_bounds.json"));
    private static readonly Lazy<JsonDocument> LayersDoc = new(() => Load("golden_layers.json"));

    private static JsonDocument Load(string name) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "Lipschitz", name)));

    public static JsonElement Case(string name) =>
        BoundsDoc.Value.RootElement.GetProperty("cases").EnumerateArray().First(c => c.GetProperty("name").GetString() == name);

    public static JsonElement Layer(string name) => LayersDoc.Value.RootElement.GetProperty(name);

    /// <summary>Flattens a nested list in C order.</summary>
    public static double[] Flat(JsonElement e)
    {
        var list = new List<double>();
        void Walk(JsonElement x)
        {
            if (x.ValueKind == JsonValueKind.Array)
            {
                foreach (var c in x.EnumerateArray())
                    Walk(c);
            }
            else
            {
                list.Add(x.GetDouble());
            }
        }
        Walk(e);
        return list.ToArray();
    }

    public static float[] FlatF(JsonElement e) => Flat(e).Select(v => (float)v).ToArray();

    public static Dictionary<int, double> ByIter(JsonElement e) =>
        e.EnumerateObject().ToDictionary(p => int.Parse(p.Name, System.Globalization.CultureInfo.InvariantCulture), p => p.Value.GetDouble());

    public static double Rel(double a, double b) => Math.Abs(a - b) / Math.Abs(b);
}
