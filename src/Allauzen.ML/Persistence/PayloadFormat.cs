using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Allauzen.ML.Persistence;

/// <summary>The kind of a named payload entry; stored as one byte, so values never change.</summary>
internal enum PayloadEntryKind : byte
{
    /// <summary>UTF-8 JSON written with <see cref="PayloadFormat.JsonOptions"/>.</summary>
    Json = 1,

    /// <summary>One UTF-8 string.</summary>
    String = 2,

    /// <summary>A list of strings: count, then each as byte length + UTF-8.</summary>
    Strings = 3,

    /// <summary>Raw little-endian 64-bit integers.</summary>
    Int64s = 4,

    /// <summary>Raw little-endian IEEE 754 single-precision values, with a shape.</summary>
    Float32Tensor = 5,

    /// <summary>Raw little-endian IEEE 754 double-precision values, with a shape.</summary>
    Float64Tensor = 6,

    /// <summary>Opaque bytes.</summary>
    Bytes = 7,
}

/// <summary>
/// Constants of the Allauzen payload format, shared by <see cref="ModelPayloadWriter"/> and
/// <see cref="ModelPayloadReader"/>.
/// </summary>
/// <remarks>
/// Layout, all integers little-endian:
/// <code>
/// offset  size  field
/// 0       8     magic "ALZPAYLD"
/// 8       4     format version (uint32, currently 1)
/// 12      8     total length in bytes, checksum included (int64)
/// 20      8     component signature, 8 ASCII characters
/// 28      4     payload version (int32, owned by the component)
/// 32      ...   component name (int32 byte count + UTF-8)
///         4     entry count (int32)
///         ...   entries, in write order:
///                 name (int32 byte count + UTF-8), kind (1 byte, PayloadEntryKind),
///                 for tensors: rank (int32) then rank × int64 dimensions,
///                 data byte count (int64), data
/// end-32  32    SHA-256 of every preceding byte
/// </code>
/// </remarks>
internal static class PayloadFormat
{
    /// <summary>The 8 bytes every payload starts with.</summary>
    public static ReadOnlySpan<byte> Magic => "ALZPAYLD"u8;

    /// <summary>The format version this build writes and the newest it reads.</summary>
    public const uint FormatVersion = 1;

    /// <summary>Bytes before the component name: magic, format version, total length, signature, payload version.</summary>
    public const int FixedHeaderSize = 8 + 4 + 8 + 8 + 4;

    /// <summary>Size of the trailing SHA-256 checksum.</summary>
    public const int ChecksumSize = 32;

    /// <summary>Length of a component signature.</summary>
    public const int SignatureLength = 8;

    /// <summary>
    /// JSON settings of <see cref="PayloadEntryKind.Json"/> entries: fields included, enums as strings,
    /// NaN and infinities allowed as named literals.
    /// </summary>
    public static JsonSerializerOptions JsonOptions { get; } = CreateJsonOptions();

    /// <summary>UTF-8 without a byte-order mark, throwing on invalid data.</summary>
    public static UTF8Encoding Utf8 { get; } = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Throws <see cref="ArgumentException"/> unless <paramref name="signature"/> is 8 printable ASCII characters.</summary>
    public static void CheckSignature(string signature, string paramName)
    {
        ArgumentNullException.ThrowIfNull(signature, paramName);
        if (!IsValidSignature(signature))
        {
            throw new ArgumentException(
                $"A component signature must be exactly {SignatureLength} printable ASCII characters; got '{signature}'.",
                paramName);
        }
    }

    /// <summary>True when <paramref name="signature"/> is 8 printable ASCII characters.</summary>
    public static bool IsValidSignature(string? signature)
    {
        if (signature is null || signature.Length != SignatureLength)
            return false;
        foreach (char c in signature)
        {
            if (c < 0x20 || c > 0x7E)
                return false;
        }
        return true;
    }

    private static JsonSerializerOptions CreateJsonOptions()
    {
        var options = new JsonSerializerOptions
        {
            IncludeFields = true,
            WriteIndented = false,
            NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        };
        options.Converters.Add(new JsonStringEnumConverter());
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}
