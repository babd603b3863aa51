# Sourced by benches/run.sh: `WRITE=1 benches/run.sh SECTION...` puts the
# rows and notes of a partial run into BENCHMARKS.md in place of the ones with
# the same number (row "8a." replaces every old "8…" row; note "8." every old
# "8…" note), and records under the table when, at which load and commit those
# rows were measured. The rest of the file (the full run's rows, machine,
# load and date) stays as it was.

# row_number LINE: the leading number of a table row or note ("| 8a. x |" -> 8).
row_number() { sed -E 's/^(\| |- )?([0-9]+).*/\2/' <<<"$1"; }

merge_benchmarks() {
    local file=BENCHMARKS.md line n numbers=" " tmp
    [[ -e $file ]] || { echo "no $file to merge into: run benches/run.sh without sections first" >&2; return 1; }
    for line in "${rows[@]}" "${notes[@]/#/- }"; do numbers+="$(row_number "$line") "; done
    tmp=$(mktemp)
    {
        local in_table=0 in_notes=0
        while IFS= read -r line; do
            if [[ $line == '|---'* ]]; then
                echo "$line"
                in_table=1
                continue
            fi
            if ((in_table)) && [[ $line != '|'* ]]; then
                # The table ends: the new rows join the old, in order.
                { printf '%s\n' "${kept_rows[@]}"; printf '%s\n' "${rows[@]}"; } | awk 'NF' | sort -V
                in_table=0
            fi
            if ((in_table)); then
                n=$(row_number "$line")
                [[ $numbers == *" $n "* ]] || kept_rows+=("$line")
                continue
            fi
            if [[ $line == 'Where the time goes'* ]]; then in_notes=1; fi
            if ((in_notes)) && [[ $line == '- '* ]]; then
                n=$(row_number "$line")
                [[ $numbers == *" $n "* ]] || kept_notes+=("$line")
                continue
            fi
            if ((in_notes)) && [[ $line == 'Machine:'* ]]; then
                { printf '%s\n' "${kept_notes[@]}"; printf -- '- %s\n' "${notes[@]}"; } | awk 'NF' | sort -V
                echo
                in_notes=0
            fi
            ((in_notes)) && [[ -z $line ]] && continue
            [[ $line == 'Where the time goes'* ]] && { echo "$line"; echo; continue; }
            if [[ $line =~ ^Rows\ ([0-9, ]+)\ rerun\ with(.*)$ ]]; then
                # An earlier partial run: it now speaks for the rows not replaced (if any).
                local left=() k
                for k in ${BASH_REMATCH[1]//,/ }; do [[ $numbers == *" $k "* ]] || left+=("$k"); done
                ((${#left[@]})) || continue
                line="Rows $(IFS=,; echo "${left[*]}" | sed 's/,/, /g') rerun with${BASH_REMATCH[2]}"
            fi
            # No double blank lines where a rerun line went.
            [[ -z $line && -n ${blank:-} ]] && continue
            blank=""
            [[ -n $line ]] || blank=1
            echo "$line"
        done <"$file"
        [[ -n ${blank:-} ]] || echo
        echo "Rows $(tr ' ' '\n' <<<"$numbers" | awk 'NF' | sort -un | paste -sd, | sed 's/,/, /g') rerun with" \
            "\`RUNS=$RUNS ANSIBLE_RUNS=$ANSIBLE_RUNS benches/run.sh $sections\`" \
            "on $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit, load before / after: $load_before / $load_after."
    } >"$tmp"
    mv "$tmp" "$file"
}
