#!/usr/bin/env bash
# Packs every packable library under src/ (Allauzen.ML and its satellites, e.g. Allauzen.ML.Plots) in Release:
# a .nupkg (readme, XML docs) and a .snupkg (symbols) each. Metadata lives in Directory.Build.props.
# Usage: build/pack.sh [output dir (default artifacts/packages)] [extra dotnet pack arguments...]
#   build/pack.sh artifacts/packages --version-suffix preview1
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-artifacts/packages}
shift $(( $# > 0 ? 1 : 0 ))
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
for proj in src/*/*.csproj; do
  if [ "$(dotnet msbuild "$proj" -getProperty:IsPackable | tr -d '[:space:]')" = true ]; then
    dotnet pack "$proj" -c Release -o "$out" "$@"
  fi
done
ls -l "$out"
