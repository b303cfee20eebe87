namespace Allauzen.ML.Torch;

/// <summary>
/// One <c>Vernaux</c> entry of an ELF <c>.gnu.version_r</c> section: a symbol version that the
/// object requires from one of its dependencies.
/// </summary>
/// <param name="File">The dependency that must define the version (<c>vn_file</c>), e.g. <c>libstdc++.so.6</c>.</param>
/// <param name="Name">The version name (<c>vna_name</c>), e.g. <c>GLIBCXX_3.4.32</c>.</param>
/// <param name="Flags">The <c>vna_flags</c> value; bit <c>0x2</c> is <c>VER_FLG_WEAK</c>.</param>
/// <param name="Index">The version index (<c>vna_other</c>) referenced by <c>.gnu.version</c>.</param>
/// <param name="FlagsOffset">The file offset of the two <c>vna_flags</c> bytes.</param>
internal readonly record struct ElfVersionRequirement(string File, string Name, ushort Flags, ushort Index, long FlagsOffset)
{
    /// <summary>Whether the requirement is marked weak (<c>VER_FLG_WEAK</c>).</summary>
    public bool IsWeak => (Flags & ElfVersionPatcher.VerFlagWeak) != 0;
}
