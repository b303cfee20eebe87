using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Allauzen.ML.Tests.Persistence;

/// <summary>Shared data, model and comparison helpers of the persistence tests.</summary>
internal static class PersistenceFixture
{
    public const int Size = 4;

    public sealed class Row
    {
        [VectorType(Size)]
        public float[] Features { get; set; } = [];

        public string Label { get; set; } = "";
    }

    /// <summary>Deterministic rows, including awkward values (negative zero, subnormals, large magnitudes).</summary>
    public static IDataView Data(MLContext ml, int rows = 40)
    {
        var random = new Random(42);
        var list = new List<Row>();
        for (int i = 0; i < rows; i++)
        {
            var x = new float[Size];
            for (int j = 0; j < Size; j++)
                x[j] = (float)(random.NextDouble() * 20 - 10);
            list.Add(new Row { Features = x, Label = i % 3 == 0 ? "a" : i % 3 == 1 ? "b" : "c" });
        }
        list[0].Features[1] = -0f;
        list[1].Features[2] = float.Epsilon;
        list[2].Features[3] = 3.0e7f;
        return ml.Data.LoadFromEnumerable(list);
    }

    /// <summary>NormalizeMinMax → TestScale (ours) → Concatenate, fitted on <paramref name="data"/>.</summary>
    public static TransformerChain<ITransformer> Model(MLContext ml, IDataView data)
    {
        TestScaleTransformer.EnsureRegistered();
        var normalizer = ml.Transforms.NormalizeMinMax("Features").Fit(data);
        var normalized = normalizer.Transform(data);
        var scale = TestScaleTransformer.Fit(normalized);
        var scaled = scale.Transform(normalized);
        var concat = ml.Transforms.Concatenate("All", "Features", "Scaled").Fit(scaled);
        return new TransformerChain<ITransformer>(normalizer, scale, concat);
    }

    /// <summary>The vector columns the model produces, read row by row.</summary>
    public static Dictionary<string, List<float[]>> Outputs(IDataView view, params string[] columns)
    {
        var result = new Dictionary<string, List<float[]>>();
        foreach (var name in columns)
            result[name] = view.GetColumn<VBuffer<float>>(name).Select(v => v.DenseValues().ToArray()).ToList();
        return result;
    }

    /// <summary>Asserts the outputs of two models are bit-identical.</summary>
    public static void AssertBitIdentical(IDataView expected, IDataView actual, params string[] columns)
    {
        var a = Outputs(expected, columns);
        var b = Outputs(actual, columns);
        foreach (var name in columns)
        {
            Assert.HasCount(a[name].Count, b[name], $"row count of {name}");
            for (int row = 0; row < a[name].Count; row++)
            {
                Assert.HasCount(a[name][row].Length, b[name][row], $"{name}[{row}] length");
                for (int j = 0; j < a[name][row].Length; j++)
                {
                    Assert.AreEqual(BitConverter.SingleToInt32Bits(a[name][row][j]), BitConverter.SingleToInt32Bits(b[name][row][j]),
                        $"{name}[{row}][{j}]: {a[name][row][j]:R} vs {b[name][row][j]:R}");
                }
            }
        }
    }

    /// <summary>All messages of an exception and its inner exceptions, outermost first.</summary>
    public static string AllMessages(Exception ex)
    {
        var parts = new List<string>();
        for (Exception? e = ex; e is not null; e = e.InnerException)
            parts.Add($"{e.GetType().Name}: {e.Message}");
        return string.Join(" <- ", parts);
    }

    /// <summary>The innermost exception.</summary>
    public static Exception Innermost(Exception ex)
    {
        while (ex.InnerException is not null)
            ex = ex.InnerException;
        return ex;
    }

    /// <summary>A fresh temporary folder, deleted by <see cref="IDisposable.Dispose"/>.</summary>
    public sealed class TempFolder : IDisposable
    {
        public TempFolder()
        {
            Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "alz-persist-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(Path);
        }

        public string Path { get; }

        public string File(string name) => System.IO.Path.Combine(Path, name);

        public void Dispose()
        {
            try
            {
                Directory.Delete(Path, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
