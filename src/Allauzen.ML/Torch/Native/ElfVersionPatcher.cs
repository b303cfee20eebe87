using System.Buffers.Binary;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Allauzen.ML.Torch;

/// <summary>
/// Minimal reader/patcher for ELF64 little-endian shared objects. It reads the section headers,
/// the dynamic section (<c>DT_NEEDED</c>), the symbol-version requirements (<c>.gnu.version_r</c>,
/// <c>SHT_GNU_verneed</c>) and the symbol-version table, and can mark one required version weak
/// (<c>vna_flags |= VER_FLG_WEAK</c>) so that the dynamic loader accepts a system library which
/// lacks that version. Nothing else in the file is changed.
/// </summary>
internal static class ElfVersionPatcher
{
    /// <summary><c>VER_FLG_WEAK</c>: a missing version is not fatal for the loader.</summary>
    internal const ushort VerFlagWeak = 0x2;

    private const uint ShtDynamic = 6;
    private const uint ShtDynSym = 11;
    private const uint ShtGnuVerNeed = 0x6ffffffe;
    private const uint ShtGnuVerSym = 0x6fffffff;
    private const long DtNull = 0;
    private const long DtNeeded = 1;
    private const int ElfHeaderSize = 64;
    private const int SectionHeaderSize = 64;
    private const int VerneedSize = 16;
    private const int VernauxSize = 16;
    private const int DynEntrySize = 16;
    private const int SymEntrySize = 24;

    /// <summary>Lists every version name required from dependencies, in table order.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed ELF64 little-endian object.</exception>
    internal static IReadOnlyList<string> ListRequiredVersions(byte[] elf)
    {
        ArgumentNullException.ThrowIfNull(elf);
        return ReadVersionRequirements(elf).Select(r => r.Name).ToArray();
    }

    /// <summary>Reads every <c>Vernaux</c> entry of the <c>.gnu.version_r</c> section.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed ELF64 little-endian object.</exception>
    internal static IReadOnlyList<ElfVersionRequirement> ReadVersionRequirements(byte[] elf)
    {
        ArgumentNullException.ThrowIfNull(elf);
        return ReadVersionRequirements(ElfImage.Parse(new ByteSource(elf)));
    }

    /// <summary>Lists the <c>DT_NEEDED</c> entries (dependency names) of an ELF object held in memory.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed ELF64 little-endian object.</exception>
    internal static IReadOnlyList<string> ListNeeded(byte[] elf)
    {
        ArgumentNullException.ThrowIfNull(elf);
        return ListNeeded(ElfImage.Parse(new ByteSource(elf)));
    }

    /// <summary>
    /// Lists the <c>DT_NEEDED</c> entries of an ELF file on disk. Only the headers, the dynamic section
    /// and its string table are read, so this is cheap even for very large libraries (libtorch_cpu.so).
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a well-formed ELF64 little-endian object.</exception>
    internal static IReadOnlyList<string> ListNeeded(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        return ListNeeded(ElfImage.Parse(new FileSource(handle, path)));
    }

    /// <summary>
    /// Lists the names of the dynamic symbols bound to the given required version (through
    /// <c>.gnu.version</c>); these are the symbols that would be unresolved if the version were missing.
    /// </summary>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed ELF64 little-endian object.</exception>
    internal static IReadOnlyList<string> ListSymbolsRequiringVersion(byte[] elf, string versionName)
    {
        ArgumentNullException.ThrowIfNull(elf);
        ArgumentNullException.ThrowIfNull(versionName);
        var image = ElfImage.Parse(new ByteSource(elf));
        var indices = ReadVersionRequirements(image)
            .Where(r => string.Equals(r.Name, versionName, StringComparison.Ordinal))
            .Select(r => r.Index)
            .ToHashSet();
        if (indices.Count == 0)
            return [];

        var dynsym = image.Sections.FirstOrDefault(s => s.Type == ShtDynSym);
        var versym = image.Sections.FirstOrDefault(s => s.Type == ShtGnuVerSym);
        if (dynsym.Type != ShtDynSym || versym.Type != ShtGnuVerSym)
            throw new InvalidDataException($"{image.Source.Name}: the object requires version '{versionName}' but has no .dynsym/.gnu.version sections.");

        var strtab = image.GetLinkedSection(dynsym, ".dynsym");
        var symbols = image.ReadSection(dynsym);
        var versions = image.ReadSection(versym);
        var count = symbols.Length / SymEntrySize;
        if (versions.Length / 2 < count)
            throw new InvalidDataException($"{image.Source.Name}: truncated ELF: .gnu.version has {versions.Length / 2} entries for {count} dynamic symbols.");

        var result = new List<string>();
        for (var i = 0; i < count; i++)
        {
            var index = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(versions.AsSpan(i * 2)) & 0x7fff);
            if (!indices.Contains(index))
                continue;
            var nameOffset = BinaryPrimitives.ReadUInt32LittleEndian(symbols.AsSpan(i * SymEntrySize));
            result.Add(image.ReadString(strtab, nameOffset));
        }

        return result;
    }

    /// <summary>
    /// Returns a copy of <paramref name="elf"/> in which the required version
    /// <paramref name="versionName"/> is marked weak (<c>vna_flags |= 0x2</c>).
    /// </summary>
    /// <param name="elf">The original object; never modified.</param>
    /// <param name="versionName">The version to weaken, e.g. <c>GLIBCXX_3.4.32</c>.</param>
    /// <param name="patched">The patched copy on success, otherwise an empty array.</param>
    /// <param name="error">Why patching was impossible, or <see langword="null"/> on success.</param>
    /// <returns><see langword="true"/> when the copy was produced.</returns>
    internal static bool TryMakeWeak(byte[] elf, string versionName, out byte[] patched, out string? error)
        => TryMakeWeak(elf, [versionName], out patched, out error);

    /// <summary>
    /// Returns a copy of <paramref name="elf"/> in which every listed required version is marked weak.
    /// Fails (without throwing) when the input is not a valid ELF64 little-endian object or when a
    /// listed version is not required by the object.
    /// </summary>
    internal static bool TryMakeWeak(byte[] elf, IReadOnlyCollection<string> versionNames, out byte[] patched, out string? error)
    {
        ArgumentNullException.ThrowIfNull(elf);
        ArgumentNullException.ThrowIfNull(versionNames);
        patched = [];
        if (versionNames.Count == 0)
        {
            error = "No version name was given.";
            return false;
        }

        IReadOnlyList<ElfVersionRequirement> requirements;
        try
        {
            requirements = ReadVersionRequirements(ElfImage.Parse(new ByteSource(elf)));
        }
        catch (InvalidDataException e)
        {
            error = e.Message;
            return false;
        }

        var copy = (byte[])elf.Clone();
        foreach (var name in versionNames)
        {
            var matches = requirements.Where(r => string.Equals(r.Name, name, StringComparison.Ordinal)).ToArray();
            if (matches.Length == 0)
            {
                var available = string.Join(", ", requirements.Select(r => r.Name).Distinct());
                error = $"The object does not require version '{name}' (required versions: {(available.Length == 0 ? "none" : available)}).";
                return false;
            }

            foreach (var match in matches)
            {
                var flags = (ushort)(match.Flags | VerFlagWeak);
                BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(checked((int)match.FlagsOffset), 2), flags);
            }
        }

        patched = copy;
        error = null;
        return true;
    }

    private static IReadOnlyList<string> ListNeeded(ElfImage image)
    {
        var dynamic = image.Sections.FirstOrDefault(s => s.Type == ShtDynamic);
        if (dynamic.Type != ShtDynamic)
            return [];

        var strtab = image.GetLinkedSection(dynamic, ".dynamic");
        var entries = image.ReadSection(dynamic);
        var result = new List<string>();
        for (var offset = 0; offset + DynEntrySize <= entries.Length; offset += DynEntrySize)
        {
            var tag = BinaryPrimitives.ReadInt64LittleEndian(entries.AsSpan(offset));
            if (tag == DtNull)
                break;
            if (tag != DtNeeded)
                continue;
            var value = BinaryPrimitives.ReadUInt64LittleEndian(entries.AsSpan(offset + 8));
            if (value > uint.MaxValue)
                throw new InvalidDataException($"{image.Source.Name}: DT_NEEDED string offset {value} is out of range.");
            result.Add(image.ReadString(strtab, (uint)value));
        }

        return result;
    }

    private static List<ElfVersionRequirement> ReadVersionRequirements(ElfImage image)
    {
        var result = new List<ElfVersionRequirement>();
        var section = image.Sections.FirstOrDefault(s => s.Type == ShtGnuVerNeed);
        if (section.Type != ShtGnuVerNeed)
            return result;

        var strtab = image.GetLinkedSection(section, ".gnu.version_r");
        var data = image.ReadSection(section);
        var name = image.Source.Name;
        var declaredCount = section.Info;
        long verneedOffset = 0;
        var visited = 0;
        while (true)
        {
            if (verneedOffset < 0 || verneedOffset + VerneedSize > data.Length)
                throw new InvalidDataException($"{name}: truncated ELF: Verneed entry at offset {verneedOffset} lies outside .gnu.version_r ({data.Length} bytes).");
            if (++visited > Math.Max(declaredCount, 1) + 4096)
                throw new InvalidDataException($"{name}: malformed .gnu.version_r: too many Verneed entries (cycle?).");

            var vn = data.AsSpan((int)verneedOffset, VerneedSize);
            var vnVersion = BinaryPrimitives.ReadUInt16LittleEndian(vn);
            var vnCnt = BinaryPrimitives.ReadUInt16LittleEndian(vn[2..]);
            var vnFile = BinaryPrimitives.ReadUInt32LittleEndian(vn[4..]);
            var vnAux = BinaryPrimitives.ReadUInt32LittleEndian(vn[8..]);
            var vnNext = BinaryPrimitives.ReadUInt32LittleEndian(vn[12..]);
            if (vnVersion != 1)
                throw new InvalidDataException($"{name}: unsupported Verneed version {vnVersion} (expected 1).");

            var file = image.ReadString(strtab, vnFile);
            var auxOffset = verneedOffset + vnAux;
            for (var i = 0; i < vnCnt; i++)
            {
                if (auxOffset < 0 || auxOffset + VernauxSize > data.Length)
                    throw new InvalidDataException($"{name}: truncated ELF: Vernaux entry at offset {auxOffset} lies outside .gnu.version_r ({data.Length} bytes).");
                var aux = data.AsSpan((int)auxOffset, VernauxSize);
                var flags = BinaryPrimitives.ReadUInt16LittleEndian(aux[4..]);
                var other = BinaryPrimitives.ReadUInt16LittleEndian(aux[6..]);
                var vnaName = BinaryPrimitives.ReadUInt32LittleEndian(aux[8..]);
                var vnaNext = BinaryPrimitives.ReadUInt32LittleEndian(aux[12..]);
                result.Add(new ElfVersionRequirement(file, image.ReadString(strtab, vnaName), flags, other, (long)section.Offset + auxOffset + 4));
                if (vnaNext == 0)
                {
                    if (i != vnCnt - 1)
                        throw new InvalidDataException($"{name}: malformed .gnu.version_r: Verneed for '{file}' declares {vnCnt} entries but the chain ends after {i + 1}.");
                    break;
                }

                auxOffset += vnaNext;
            }

            if (vnNext == 0)
                break;
            verneedOffset += vnNext;
        }

        return result;
    }

    /// <summary>A section header (only the fields used here).</summary>
    private readonly record struct Section(int Index, uint Type, ulong Offset, ulong Size, uint Link, uint Info);

    /// <summary>Random-access byte source for the parser.</summary>
    private abstract class ElfSource
    {
        public abstract string Name { get; }

        public abstract long Length { get; }

        public abstract void Read(long offset, Span<byte> destination);
    }

    private sealed class ByteSource(byte[] bytes) : ElfSource
    {
        public override string Name => "ELF image";

        public override long Length => bytes.LongLength;

        public override void Read(long offset, Span<byte> destination) =>
            bytes.AsSpan(checked((int)offset), destination.Length).CopyTo(destination);
    }

    private sealed class FileSource(SafeFileHandle handle, string path) : ElfSource
    {
        private readonly long _length = RandomAccess.GetLength(handle);

        public override string Name => path;

        public override long Length => _length;

        public override void Read(long offset, Span<byte> destination)
        {
            var total = 0;
            while (total < destination.Length)
            {
                var read = RandomAccess.Read(handle, destination[total..], offset + total);
                if (read <= 0)
                    throw new InvalidDataException($"{path}: unexpected end of file at offset {offset + total}.");
                total += read;
            }
        }
    }

    /// <summary>Validated ELF header plus section header table.</summary>
    private sealed class ElfImage
    {
        private ElfImage(ElfSource source, Section[] sections)
        {
            Source = source;
            Sections = sections;
        }

        public ElfSource Source { get; }

        public Section[] Sections { get; }

        public static ElfImage Parse(ElfSource source)
        {
            var name = source.Name;
            if (source.Length < 4)
                throw new InvalidDataException($"{name}: not an ELF file: only {source.Length} bytes (the ELF magic 0x7F 'E' 'L' 'F' needs 4).");

            Span<byte> header = stackalloc byte[ElfHeaderSize];
            source.Read(0, header[..4]);
            if (header[0] != 0x7f || header[1] != (byte)'E' || header[2] != (byte)'L' || header[3] != (byte)'F')
                throw new InvalidDataException($"{name}: not an ELF file: bad magic {header[0]:X2} {header[1]:X2} {header[2]:X2} {header[3]:X2} (expected 7F 45 4C 46).");
            if (source.Length < ElfHeaderSize)
                throw new InvalidDataException($"{name}: truncated ELF: {source.Length} bytes, shorter than the 64-byte ELF64 header.");

            source.Read(0, header);
            if (header[4] != 2)
                throw new InvalidDataException($"{name}: unsupported ELF class {header[4]} (only ELFCLASS64 = 2 is supported).");
            if (header[5] != 1)
                throw new InvalidDataException($"{name}: unsupported ELF data encoding {header[5]} (only little-endian ELFDATA2LSB = 1 is supported).");

            var shoff = BinaryPrimitives.ReadUInt64LittleEndian(header[40..]);
            var shentsize = BinaryPrimitives.ReadUInt16LittleEndian(header[58..]);
            long shnum = BinaryPrimitives.ReadUInt16LittleEndian(header[60..]);
            if (shoff == 0)
                throw new InvalidDataException($"{name}: the ELF object has no section header table.");
            if (shentsize != SectionHeaderSize)
                throw new InvalidDataException($"{name}: unexpected section header entry size {shentsize} (expected {SectionHeaderSize}).");
            if (shoff > (ulong)source.Length || (ulong)source.Length - shoff < SectionHeaderSize)
                throw new InvalidDataException($"{name}: truncated ELF: section header table at offset {shoff} lies beyond the end of the file ({source.Length} bytes).");

            Span<byte> entry = stackalloc byte[SectionHeaderSize];
            if (shnum == 0)
            {
                // Extended numbering: the real count is in sh_size of section 0.
                source.Read((long)shoff, entry);
                var extended = BinaryPrimitives.ReadUInt64LittleEndian(entry[32..]);
                if (extended > int.MaxValue)
                    throw new InvalidDataException($"{name}: implausible section count {extended}.");
                shnum = (long)extended;
            }

            if ((ulong)shnum * SectionHeaderSize > (ulong)source.Length - shoff)
                throw new InvalidDataException($"{name}: truncated ELF: section header table ({shnum} entries at offset {shoff}) extends beyond the end of the file ({source.Length} bytes).");

            var sections = new Section[shnum];
            for (var i = 0; i < shnum; i++)
            {
                source.Read((long)shoff + ((long)i * SectionHeaderSize), entry);
                sections[i] = new Section(
                    i,
                    BinaryPrimitives.ReadUInt32LittleEndian(entry[4..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(entry[24..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(entry[32..]),
                    BinaryPrimitives.ReadUInt32LittleEndian(entry[40..]),
                    BinaryPrimitives.ReadUInt32LittleEndian(entry[44..]));
            }

            return new ElfImage(source, sections);
        }

        public Section GetLinkedSection(Section section, string what)
        {
            if (section.Link == 0 || section.Link >= Sections.Length)
                throw new InvalidDataException($"{Source.Name}: {what} section links to invalid string table index {section.Link}.");
            return Sections[section.Link];
        }

        public byte[] ReadSection(Section section)
        {
            if (section.Offset > (ulong)Source.Length || section.Size > (ulong)Source.Length - section.Offset)
                throw new InvalidDataException($"{Source.Name}: truncated ELF: section #{section.Index} (offset {section.Offset}, size {section.Size}) extends beyond the end of the file ({Source.Length} bytes).");
            if (section.Size > 256L * 1024 * 1024)
                throw new InvalidDataException($"{Source.Name}: section #{section.Index} is implausibly large ({section.Size} bytes).");
            var data = new byte[section.Size];
            Source.Read((long)section.Offset, data);
            return data;
        }

        public string ReadString(Section strtab, uint offset)
        {
            if (offset >= strtab.Size)
                throw new InvalidDataException($"{Source.Name}: string offset {offset} lies outside string table #{strtab.Index} ({strtab.Size} bytes).");
            if (strtab.Offset > (ulong)Source.Length || strtab.Size > (ulong)Source.Length - strtab.Offset)
                throw new InvalidDataException($"{Source.Name}: truncated ELF: string table #{strtab.Index} (offset {strtab.Offset}, size {strtab.Size}) extends beyond the end of the file ({Source.Length} bytes).");

            var start = (long)strtab.Offset + offset;
            var end = (long)strtab.Offset + (long)strtab.Size;
            var buffer = new List<byte>(32);
            Span<byte> chunk = stackalloc byte[64];
            for (var position = start; position < end;)
            {
                var length = (int)Math.Min(chunk.Length, end - position);
                Source.Read(position, chunk[..length]);
                var zero = chunk[..length].IndexOf((byte)0);
                if (zero >= 0)
                {
                    foreach (var b in chunk[..zero])
                        buffer.Add(b);
                    return Encoding.UTF8.GetString(buffer.ToArray());
                }

                foreach (var b in chunk[..length])
                    buffer.Add(b);
                position += length;
            }

            throw new InvalidDataException($"{Source.Name}: unterminated string at offset {offset} in string table #{strtab.Index}.");
        }
    }
}
