#!/usr/bin/env bash
# Packed-package smoke test: what a user gets from `dotnet add package Allauzen.ML`.
#  1. packs the src/ libraries (build/pack.sh: Allauzen.ML and satellites such as Allauzen.ML.Plots) into a
#     temporary folder feed, with a unique version (<VersionPrefix>-smoke<time><pid>) so that no stale
#     Allauzen.ML in the NuGet cache can be used;
#  2. checks the packages: a warning-free pack, readme and symbols package for each, XML docs and no ScottPlot
#     dependency for Allauzen.ML;
#  3. copies the console project of build/smoke/ into a temporary directory and builds it against that feed
#     plus the machine's configured feeds (TorchSharp-cpu 0.107.0, Microsoft.ML.OnnxRuntime 1.31.1 come from
#     the machine's NuGet cache as usual);
#  4. runs it twice: `train` (fit an MLP on 250 digits rows, evaluate, ml.Model.Save), then in a second process
#     `load` (ml.Model.Load without any registration call, same scores, ExportToOnnx, ApplyOnnxModel parity <= 1e-5).
# Prints one "ok:"/"FAIL:" line per check and exits non-zero when any check fails. Nothing is written to the
# repository except the library's own bin/ and obj/; the temporary directory and the unique version's
# folder in the NuGet cache are removed at exit (SMOKE_KEEP=1 keeps the directory and prints its path).
# Usage: build/smoke/run.sh   (about 15 s after `dotnet build -c Release` on 2 cores; it packs and builds what is missing)
set -uo pipefail
cd "$(dirname "$0")/../.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

start=$(date +%s)
work=$(mktemp -d -t allauzen-smoke.XXXXXX)
failures=()
cache_dir=""
cleanup() {
  if [ -n "$cache_dir" ]; then rm -rf "$cache_dir"; fi
  if [ "${SMOKE_KEEP:-0}" = 1 ]; then echo "smoke: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; failures+=("${1%%:*}"); }
# Runs a command with its output in $work/<name>.log; on failure prints the log's tail and stops the test.
run_logged() {
  local name=$1; shift
  if ! "$@" >"$work/$name.log" 2>&1; then
    tail -40 "$work/$name.log"
    fail "$name: '$*' failed (log above)"
    finish
  fi
}
# Warnings in a pack log; NuGet's readme notice is not worded as a warning but counts as one.
pack_warned() { grep -qiE '(^|[^a-z])warning( |:)|missing a readme' "$1"; }
finish() {
  local elapsed=$(( $(date +%s) - start ))
  if [ ${#failures[@]} -eq 0 ]; then
    echo "smoke test: PASS in ${elapsed} s (Allauzen.ML $version)"
    exit 0
  fi
  echo "smoke test: FAIL in ${elapsed} s: ${#failures[@]} failed check(s): ${failures[*]}"
  exit 1
}

# 1. Pack every src/ library (build/pack.sh) with a unique version.
version="$(dotnet msbuild src/Allauzen.ML -getProperty:VersionPrefix)-smoke$(date +%s)$$"
version=${version//[[:space:]]/}
feed="$work/feed"
t0=$(date +%s)
run_logged pack bash build/pack.sh "$feed" -p:PackageVersion="$version"
sed 's/^/  /' "$work/pack.log"
nupkg="$feed/Allauzen.ML.$version.nupkg"
if pack_warned "$work/pack.log"; then
  fail "pack-warnings: dotnet pack printed warnings (above; a missing readme wants a PACKAGE.md beside the .csproj)"
else
  ok "packed $(cd "$feed" && echo *.nupkg) in $(( $(date +%s) - t0 )) s without warnings"
fi

# 2. Package contents: every package has its readme and symbols; the core has its XML docs and no ScottPlot.
for pkg in "$feed"/*."$version".nupkg; do
  id=$(basename "$pkg" ".$version.nupkg")
  # Captured first: `unzip | grep -q` fails under pipefail when grep stops reading early.
  listing=$(unzip -l "$pkg"); spec=$(unzip -p "$pkg" "$id.nuspec")
  if grep -qE '[[:space:]]PACKAGE\.md$' <<<"$listing" && grep -q '<readme>PACKAGE.md</readme>' <<<"$spec"; then
    ok "$id carries its readme (PACKAGE.md)"
  else
    fail "readme-$id: PACKAGE.md missing from $id or not declared as <readme> in its .nuspec"
  fi
  if [ -f "$feed/$id.$version.snupkg" ]; then ok "$id symbols package (.snupkg)"; else fail "symbols-$id: no $id.$version.snupkg"; fi
done
if grep -qE 'lib/net10\.0/Allauzen\.ML\.xml$' <<<"$(unzip -l "$nupkg")"; then ok "Allauzen.ML XML documentation included"; else fail "xml-docs: lib/net10.0/Allauzen.ML.xml missing"; fi
nuspec=$(unzip -p "$nupkg" Allauzen.ML.nuspec)
if grep -qi 'id="ScottPlot"' <<<"$nuspec"; then
  fail "scottplot-dependency: Allauzen.ML's .nuspec depends on ScottPlot (it belongs in Allauzen.ML.Plots): $(grep -i 'id="ScottPlot"' <<<"$nuspec" | sed 's/^ *//')"
else
  ok "Allauzen.ML has no ScottPlot dependency"
fi

# 3. A throwaway console project against the folder feed; the machine's feeds stay (no <clear/>).
app="$work/app"
mkdir -p "$app" "$work/out"
cp build/smoke/Smoke.csproj build/smoke/Program.cs build/smoke/Directory.Build.props build/smoke/Directory.Build.targets "$app/"
head -n 250 src/Allauzen.ML.Samples/Data/digits.csv > "$work/digits.csv"
cat > "$app/NuGet.config" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="allauzen-smoke" value="$feed" />
  </packageSources>
</configuration>
EOF
cache_dir="$(dotnet nuget locals global-packages --list | sed -E 's/^global-packages: *//')"
cache_dir="${cache_dir%/}/allauzen.ml/${version,,}"
t0=$(date +%s)
run_logged build dotnet build "$app/Smoke.csproj" -c Release -p:AllauzenMLVersion="$version"
resolved=$(grep -o "\"Allauzen.ML/[^\"]*\"" "$app/obj/project.assets.json" | head -1)
if [ "$resolved" = "\"Allauzen.ML/$version\"" ]; then
  ok "built the smoke project against $resolved from the folder feed in $(( $(date +%s) - t0 )) s"
else
  fail "resolve: the smoke project resolved ${resolved:-no Allauzen.ML}, expected $version"
fi

# 4. Train + save, then load (no registration) + ONNX in a second process.
dll="$app/bin/Release/net10.0/Smoke.dll"
for mode in train load; do
  t0=$(date +%s)
  dotnet "$dll" "$mode" "$work/digits.csv" "$work/out" 2>&1 | sed 's/^/  /'
  rc=${PIPESTATUS[0]}
  if [ "$rc" -eq 0 ]; then ok "'$mode' process exited 0 in $(( $(date +%s) - t0 )) s"; else fail "$mode: the '$mode' process exited $rc"; fi
  if [ "$rc" -ne 0 ] && [ "$mode" = train ]; then finish; fi
done
finish
