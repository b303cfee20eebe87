using Allauzen.ML.Persistence;
using Allauzen.ML.Speech;

namespace Microsoft.ML;

/// <summary>The <c>ml.Transforms.Speech</c> extension property.</summary>
public static class SpeechCatalogExtensions
{
    extension(TransformsCatalog catalog)
    {
        /// <summary>Speech transforms: <c>ml.Transforms.Speech.SslFeaturizer(...)</c>.</summary>
        public SpeechCatalog Speech => new(catalog);
    }
}
