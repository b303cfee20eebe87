namespace Allauzen.ML; internal static class Placeholder {}
