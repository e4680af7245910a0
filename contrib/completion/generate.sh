#!/bin/sh
# Regenerates the completion scripts from a built binary (default dist/crio):
#   sh contrib/completion/generate.sh [path/to/crio]
# test/e2e/operator.test.ts fails when they differ from `crio completion <shell>`.
set -eu
cd "$(dirname "$0")"
crio=${1:-../../dist/crio}
"$crio" completion bash >crio.bash
"$crio" completion zsh >_crio
"$crio" completion fish >crio.fish
