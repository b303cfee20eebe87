namespace Allauzen.ML.Samples.Common;

/// <summary>One image of a sample: its pixels (row-major) and its class index (-1 when it has none).</summary>
internal sealed record LabelledImage(float[] Pixels, int Class)
{
    /// <summary>A view with a Vector&lt;Single, d&gt; Features column and a text Label column (the class index).</summary>
    public static IDataView View(MLContext ml, IReadOnlyList<LabelledImage> images)
    {
        var schema = SchemaDefinition.Create(typeof(Row));
        schema["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, images[0].Pixels.Length);
        return ml.Data.LoadFromEnumerable(images.Select(im => new Row { Features = im.Pixels, Label = im.Class.ToString(CultureInfo.InvariantCulture) }), schema);
    }

    /// <summary>A row of the views handed to the evaluators and trainers.</summary>
    private sealed class Row
    {
        public float[] Features { get; set; } = [];

        public string Label { get; set; } = "";
    }
}
