#!/bin/sh
# scripts/check_layers.sh [ROOT]: checks that every source file of strata includes only what its
# layer may use (README "Architecture"). The layer graph is declared once, here; tests/layers.sh
# runs this on the tree, and on copies with a wrong include to prove that it fails.
#
# A file's layer is its folder. It may include:
#   - headers of its own folder, by bare name ("cost_private.h") or from the top ("cost/cost.h");
#   - the public header of a layer its layer may use, from the top of the tree: FOLDER/NAME.h
#     named after the folder (src/core/core.h, cost/cost.h, ...), plus src/lower/program.h (the
#     program format, part of the lowering's interface) and src/io/jsonutil.h (io's JSON helpers)
#     for the files above io that truly read or write JSON, listed in json_files below;
#   - config.h, and system headers, except that library headers stay in their rooms: jansson.h in
#     src/io/jsonutil.h and traces/ alone (so Jansson reaches a file only through them), glpk.h in
#     search/ilp.c alone, igraph.h in search/graph.c alone, CUDA's headers in profiler/ and exec/
#     alone, mpi.h in exec/ alone.
# No source file includes the umbrella src/strata.h, and none includes with "../". The fake libraries
# of profiler/mock and exec/mock stand in for CUDA's and are not strata's sources: not checked.
# Prints one line per violation ("FILE:LINE: ...") and exits 1 if there is any, else 0.
set -u
LC_ALL=C
export LC_ALL
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || { echo "check_layers.sh: no folder $root" >&2; exit 2; }

# layer: folder, then the layers it may use (each a folder)
graph='
core      src/core   -
cost      cost       core
traces    traces     core
io        src/io     core cost
search    search     core cost
lower     src/lower  core cost search
sim       src/sim    core cost search lower traces
exec      exec       core cost lower traces
profiler  profiler   core cost io traces exec
report    src/report core cost traces io search lower sim exec profiler
cli       src/cli    core cost traces io search lower sim exec profiler report
'

# the files above src/io/ that read or write JSON, and so may include src/io/jsonutil.h
json_files='src/report/report_json.h src/report/plot_io.c profiler/kineto.c profiler/prof.c profiler/fit.c profiler/cpu.c'

files=$(for d in src/core cost traces src/io search src/lower src/sim exec profiler src/report src/cli; do
	[ -d "$d" ] && find "$d" \( -path profiler/mock -o -path exec/mock \) -prune -o \
		-type f \( -name '*.c' -o -name '*.h' -o -name '*.cu' \) -print
done | sort)
[ -n "$files" ] || { echo "check_layers.sh: no sources under $root" >&2; exit 2; }

out=$(printf '%s\n' "$files" | while IFS= read -r f; do
	awk -v file="$f" -v graph="$graph" -v json_files="$json_files" '
	BEGIN {
		n = split(graph, lines, "\n")
		for (i = 1; i <= n; i++) {
			k = split(lines[i], w, " ")
			if (k < 3) continue
			name_of[w[2]] = w[1]; dir_of[w[1]] = w[2]
			for (j = 3; j <= k; j++) if (w[j] != "-") may[w[1], w[j]] = 1
		}
		# the file'"'"'s folder and layer
		dir = file; sub(/\/[^\/]*$/, "", dir)
		me = name_of[dir]
		k = split(json_files, w, " ")
		for (i = 1; i <= k; i++) json_users[w[i]] = 1
	}
	/^[ \t]*#[ \t]*include[ \t]*[<"]/ {
		line = $0
		sys = line ~ /#[ \t]*include[ \t]*</
		h = line; sub(/^[^<"]*[<"]/, "", h); sub(/[>"].*$/, "", h)
		if (sys) {
			if (h == "jansson.h" && file != "src/io/jsonutil.h" && dir != "traces") v = "jansson.h outside src/io/jsonutil.h and traces/"
			else if (h == "glpk.h" && file != "search/ilp.c") v = "glpk.h outside search/ilp.c"
			else if (h ~ /^igraph/ && file != "search/graph.c") v = "igraph outside search/graph.c"
			else if (h ~ /^(cuda|cupti|cublas|nccl|nvml)/ && dir != "profiler" && dir != "exec") v = "CUDA header " h " outside profiler/ and exec/"
			else if (h == "mpi.h" && dir != "exec") v = "mpi.h outside exec/"
			else v = ""
		} else if (h == "config.h") {
			v = ""
		} else if (h ~ /\.\.\//) {
			v = "includes with ../ (write the path from the top of the tree)"
		} else if (h == "src/strata.h" || h == "strata.h") {
			v = "includes the umbrella src/strata.h (include the layer headers it needs)"
		} else if (h !~ /\//) {
			v = ""   # a header of its own folder
			if (system("test -f \"" dir "/" h "\"") != 0) v = "includes " h ", which is not in its folder " dir "/"
		} else {
			hd = h; sub(/\/[^\/]*$/, "", hd)
			hb = h; sub(/^.*\//, "", hb)
			them = name_of[hd]
			if (hd == dir) v = ""
			else if (them == "") v = "includes " h ", which is in no layer"
			else if (!may[me, them]) v = "layer " me " (" dir "/) may not use layer " them " (" h ")"
			else if (hb != them ".h" && h != "src/lower/program.h" && h != "src/io/jsonutil.h")
				v = "includes " h ", a private header of " hd "/ (include " hd "/" them ".h)"
			else if (h == "src/io/jsonutil.h" && !(file in json_users))
				v = "includes src/io/jsonutil.h (Jansson) but is not one of the files that read or write JSON"
			else v = ""
		}
		if (v != "") printf "%s:%d: %s\n", file, FNR, v
	}
	' "$f"
done)
[ -z "$out" ] && exit 0
printf '%s\n' "$out"
exit 1
