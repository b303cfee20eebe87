using Allauzen.ML.Core;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Allauzen.ML.Tests.TestSupport;

/// <summary>
/// The contract every Allauzen estimator must meet, in the spirit of ML.NET's TestEstimatorCore:
/// schema propagation (SchemaShape vs DataViewSchema vs the transformed view), bad input rejected
/// with the column named, save/load in a fresh MLContext giving identical values, the row mapper
/// (PredictionEngine's path) equal to the batched Transform, and ONNX parity.
/// </summary>
public static class EstimatorContract
{
    public sealed record Report(ITransformer Transformer, double RowMapperMaxDiff, double OnnxMaxDiff);

    /// <param name="estimator">The estimator under test.</param>
    /// <param name="train">Valid training data.</param>
    /// <param name="score">Valid data to score.</param>
    /// <param name="compareColumns">Output columns compared across save/load, row mapper and ONNX.</param>
    /// <param name="invalidInputs">Data the transformer must reject, with the column the message must name, and
    /// whether the estimator's Fit must reject it too (a missing column; a different vector size is valid training data).</param>
    /// <param name="onnx">Also check ONNX parity (≤ 1e-5).</param>
    public static Report Check<T>(IEstimator<T> estimator, IDataView train, IDataView score, string[] compareColumns,
        (IDataView Data, string Column, bool FitFails)[] invalidInputs, bool onnx = true)
        where T : class, ITransformer
    {
        // 1. Schema propagation: the estimator's SchemaShape covers the fitted transformer's schema.
        var shape = estimator.GetOutputSchema(SchemaShapes.FromSchema(train.Schema));
        var transformer = estimator.Fit(train);
        var outSchema = transformer.GetOutputSchema(score.Schema);
        foreach (var col in outSchema.Where(c => !c.IsHidden))
        {
            var expected = SchemaShapes.FromColumn(col);
            var found = shape.LastOrDefault(c => c.Name == col.Name);
            Assert.AreEqual(col.Name, found.Name, $"GetOutputSchema(SchemaShape) lacks column '{col.Name}'.");
            Assert.AreEqual(expected.Kind, found.Kind, $"Column '{col.Name}': vector kind differs.");
            Assert.AreEqual(expected.ItemType, found.ItemType, $"Column '{col.Name}': item type differs.");
            Assert.AreEqual(expected.IsKey, found.IsKey, $"Column '{col.Name}': key flag differs.");
        }

        // 2. The transformed view has exactly that schema.
        var transformed = transformer.Transform(score);
        Assert.AreEqual(outSchema.Count, transformed.Schema.Count);
        for (int i = 0; i < outSchema.Count; i++)
        {
            Assert.AreEqual(outSchema[i].Name, transformed.Schema[i].Name);
            Assert.AreEqual(outSchema[i].Type, transformed.Schema[i].Type, $"Column '{outSchema[i].Name}' type.");
        }
        var reference = compareColumns.ToDictionary(c => c, c => TestData.ReadColumn(transformed, c));

        // 3. Bad input: a clear error that names the column, from both the transformer and the estimator.
        foreach (var (bad, column, fitFails) in invalidInputs)
        {
            var e1 = Assert.Throws<Exception>(() => transformer.Transform(bad));
            StringAssert.Contains(e1.Message, $"'{column}'");
            if (!fitFails)
                continue;
            var e2 = Assert.Throws<Exception>(() => estimator.Fit(bad));
            StringAssert.Contains(e2.Message, $"'{column}'");
            var e3 = Assert.Throws<Exception>(() => estimator.GetOutputSchema(SchemaShapes.FromSchema(bad.Schema)));
            StringAssert.Contains(e3.Message, $"'{column}'");
        }

        // 4. Save in one MLContext, load in a fresh one: bit-identical values.
        var ms = new MemoryStream();
        new MLContext(seed: 1).Model.Save(transformer, score.Schema, ms);
        ms.Position = 0;
        var ml2 = new MLContext(seed: 2);
        ml2.UseAllauzen();
        var loaded = ml2.Model.Load(ms, out var loadedSchema);
        Assert.AreEqual(score.Schema.Count, loadedSchema.Count);
        var reloaded = loaded.Transform(score);
        foreach (var c in compareColumns)
            Assert.AreEqual(0.0, TestData.MaxAbsDiff(reference[c], TestData.ReadColumn(reloaded, c)), $"Column '{c}' after save/load.");

        // 5. Row mapper (PredictionEngine's path, batch of one) vs batched Transform.
        double mapperDiff = 0;
        var mapper = transformer.GetRowToRowMapper(score.Schema);
        var active = mapper.OutputSchema.Where(c => compareColumns.Contains(c.Name) && !c.IsHidden).ToArray();
        using (var cursor = score.GetRowCursor(mapper.GetDependencies(active)))
        using (var row = mapper.GetRow(cursor, active))
        {
            var viaMapper = compareColumns.ToDictionary(c => c, _ => new List<double[]>());
            var getters = active.ToDictionary(c => c.Name, c => RowReader(row, c));
            while (cursor.MoveNext())
            {
                foreach (var (name, get) in getters)
                    viaMapper[name].Add(get());
            }
            foreach (var c in compareColumns)
                mapperDiff = Math.Max(mapperDiff, TestData.MaxAbsDiff(reference[c], viaMapper[c].ToArray()));
        }

        // 6. ONNX parity through ONNX Runtime.
        double onnxDiff = double.NaN;
        if (onnx)
            onnxDiff = OnnxMaxDiff(new MLContext(seed: 1), transformer, score, compareColumns);
        return new Report(transformer, mapperDiff, onnxDiff);
    }

    private static Func<double[]> RowReader(DataViewRow row, DataViewSchema.Column col)
    {
        if (col.Type is VectorDataViewType)
        {
            var g = row.GetGetter<VBuffer<float>>(col);
            VBuffer<float> v = default;
            return () => { g(ref v); return v.DenseValues().Select(x => (double)x).ToArray(); };
        }
        if (col.Type is KeyDataViewType)
        {
            var g = row.GetGetter<uint>(col);
            uint v = 0;
            return () => { g(ref v); return [v]; };
        }
        if (col.Type.RawType == typeof(double))
        {
            var gd = row.GetGetter<double>(col);
            double d = 0;
            return () => { gd(ref d); return [d]; };
        }
        if (col.Type.RawType == typeof(bool))
        {
            var gb = row.GetGetter<bool>(col);
            bool b = false;
            return () => { gb(ref b); return [b ? 1 : 0]; };
        }
        var gf = row.GetGetter<float>(col);
        float f = 0;
        return () => { gf(ref f); return [f]; };
    }

    /// <summary>
    /// Exports with ml.Model.ExportToOnnx and returns max |Transform − ONNX| over the columns, through
    /// both ONNX Runtime directly and ML.NET's ApplyOnnxModel.
    /// </summary>
    public static double OnnxMaxDiff(MLContext ml, ITransformer model, IDataView data, string[] columns)
    {
        var ms = new MemoryStream();
        ml.Model.ExportToOnnx(model, data, ms);
        double viaOrt = OrtMaxDiff(ms.ToArray(), model, data, columns);
        var floatColumns = columns.Where(c => model.GetOutputSchema(data.Schema)[c].Type is VectorDataViewType).ToArray();
        var apply = ml.Transforms.ApplyOnnxModel(floatColumns.Select(c => c + ".output").ToArray(), InputNames(ms.ToArray()),
            new MemoryStream(ms.ToArray()));
        var applied = apply.Fit(data).Transform(data);
        var expected = model.Transform(data);
        double viaApply = 0;
        foreach (var c in floatColumns)
            viaApply = Math.Max(viaApply, TestData.MaxAbsDiff(TestData.ReadColumn(expected, c), TestData.ReadColumn(applied, c)));
        return Math.Max(viaOrt, viaApply);
    }

    private static string[] InputNames(byte[] onnx)
    {
        using var session = new InferenceSession(onnx);
        return session.InputMetadata.Keys.ToArray();
    }

    private static double OrtMaxDiff(byte[] onnx, ITransformer model, IDataView data, string[] columns)
    {
        var ms = new MemoryStream(onnx);
        using var session = new InferenceSession(ms.ToArray());
        var inputs = new List<NamedOnnxValue>();
        foreach (var (name, meta) in session.InputMetadata)
            inputs.Add(InputTensor(data, name, meta));
        using var results = session.Run(inputs);
        var transformed = model.Transform(data);
        double max = 0;
        foreach (var c in columns)
        {
            var expected = TestData.ReadColumn(transformed, c);
            var r = results.FirstOrDefault(x => x.Name == c + ".output")
                ?? throw new AssertFailedException($"ONNX output '{c}.output' missing; outputs: {string.Join(", ", results.Select(x => x.Name))}");
            double[] flat = r.Value switch
            {
                Tensor<float> t => t.ToArray().Select(x => (double)x).ToArray(),
                Tensor<uint> t => t.ToArray().Select(x => (double)x).ToArray(),
                Tensor<long> t => t.ToArray().Select(x => (double)x).ToArray(),
                _ => throw new AssertFailedException($"Unexpected ONNX output type for '{c}'."),
            };
            int width = expected[0].Length;
            Assert.AreEqual(expected.Length * width, flat.Length, $"ONNX output '{c}' size.");
            for (int i = 0; i < expected.Length; i++)
            {
                for (int j = 0; j < width; j++)
                    max = Math.Max(max, Math.Abs(expected[i][j] - flat[i * width + j]));
            }
        }
        return max;
    }

    private static NamedOnnxValue InputTensor(IDataView data, string name, NodeMetadata meta)
    {
        var col = data.Schema[name];
        if (col.Type is VectorDataViewType vt && vt.ItemType == NumberDataViewType.Single)
        {
            var rows = TestData.ReadColumn(data, name);
            return NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(rows.SelectMany(r => r.Select(x => (float)x)).ToArray(), [rows.Length, vt.Size]));
        }
        if (col.Type is KeyDataViewType)
        {
            var rows = TestData.ReadColumn(data, name);
            return NamedOnnxValue.CreateFromTensor(name, new DenseTensor<uint>(rows.Select(r => (uint)r[0]).ToArray(), [rows.Length, 1]));
        }
        if (col.Type is TextDataViewType)
        {
            var rows = data.GetColumn<string>(name).ToArray();
            return NamedOnnxValue.CreateFromTensor(name, new DenseTensor<string>(rows, [rows.Length, 1]));
        }
        if (col.Type.RawType == typeof(float))
        {
            var rows = data.GetColumn<float>(name).ToArray();
            return NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(rows, [rows.Length, 1]));
        }
        throw new AssertFailedException($"Cannot feed ONNX input '{name}' of type {col.Type} ({meta.ElementType}).");
    }
}
