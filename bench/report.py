#!/usr/bin/env python3
"""Turns bench/run's measurements into medians: an aligned table on standard output and JSON.

Each input line is one measurement: {"section", "case", "subject", "metrics": {...}}. Rows keep
the order in which their subject was first measured, which bench/run makes the natural order
(the baseline first) by starting its first repetition there.
"""
import argparse
import json
import statistics

# Per section: title, the metrics shown (key, header, format), and the ratio column: which
# metric, against which subject (None: the first row of the case), and whether more is better.
SECTIONS = {
    "1": {
        "title": "(1) open + read to EOF + close of a 100-byte secret",
        "metrics": [("ops_per_s", "ops/s", "{:,.0f}"), ("p50_us", "p50 us", "{:.1f}"),
                    ("p99_us", "p99 us", "{:.1f}")],
        "ratio": ("ops_per_s", "bindfs", "more", "x bindfs"),
    },
    "2": {
        "title": "(2) mount start (or first age process) to every secret read once",
        "metrics": [("seconds", "seconds", "{:.3f}")],
        "ratio": ("seconds", "age loop", "less", "x sooner than age loop"),
    },
    "3": {
        "title": "(3) one large secret read to the end",
        "metrics": [("seconds", "seconds", "{:.3f}"), ("mib_per_s", "MiB/s", "{:,.1f}")],
        "ratio": ("mib_per_s", "age -d", "more", "x age -d"),
    },
    "4": {
        "title": "(4) daemon memory (VmRSS now, VmHWM peak since start)",
        "metrics": [("rss_mib", "VmRSS MiB", "{:.1f}"), ("hwm_mib", "VmHWM MiB", "{:.1f}")],
        "ratio": None,
    },
    "5": {
        "title": "(5) secretfs activate of a new generation, start to a secret of it read",
        "metrics": [("seconds", "seconds", "{:.3f}")],
        "ratio": None,
    },
    "6": {
        "title": "(6) open + read + close of the same 10 secrets, by secrets mounted",
        "metrics": [("ops_per_s", "ops/s", "{:,.0f}"), ("p50_us", "p50 us", "{:.1f}"),
                    ("p99_us", "p99 us", "{:.1f}")],
        "ratio": ("ops_per_s", None, "more", "x fewest mounted"),
    },
}


def read_groups(path):
    """(section, case, subject) -> list of metric dicts, in order of first appearance."""
    groups = {}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            measurement = json.loads(line)
            key = (measurement["section"], measurement["case"], measurement["subject"])
            groups.setdefault(key, []).append(measurement["metrics"])
    return groups


def summarize(groups):
    rows = []
    for (section, case, subject), samples in groups.items():
        metrics = SECTIONS[section]["metrics"]
        rows.append({
            "section": section,
            "case": case,
            "subject": subject,
            "repetitions": len(samples),
            "median": {key: statistics.median(s[key] for s in samples) for key, _, _ in metrics},
            "samples": {key: [s[key] for s in samples] for key, _, _ in metrics},
        })
    for row in rows:
        add_ratio(row, rows)
    return rows


def add_ratio(row, rows):
    ratio = SECTIONS[row["section"]]["ratio"]
    if ratio is None:
        return
    metric, baseline, better, _ = ratio
    peers = [r for r in rows if r["section"] == row["section"] and r["case"] == row["case"]]
    if baseline is None:
        baseline = peers[0]["subject"]
    base = next((r for r in peers if r["subject"] == baseline), None)
    if base is None or row["median"][metric] == 0:
        return
    value, reference = row["median"][metric], base["median"][metric]
    row["ratio"] = value / reference if better == "more" else reference / value
    row["ratio_against"] = baseline


def table(rows):
    lines = []
    for section, spec in SECTIONS.items():
        section_rows = [r for r in rows if r["section"] == section]
        if not section_rows:
            continue
        header = ["case", "subject", "reps"] + [h for _, h, _ in spec["metrics"]]
        if spec["ratio"]:
            header.append(spec["ratio"][3])
        cells = [header]
        for row in section_rows:
            line = [row["case"], row["subject"], str(row["repetitions"])]
            line += [fmt.format(row["median"][key]) for key, _, fmt in spec["metrics"]]
            if spec["ratio"]:
                line.append("{:.2f}".format(row["ratio"]) if "ratio" in row else "-")
            cells.append(line)
        widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
        lines.append("")
        lines.append(spec["title"])
        for line in cells:
            # Case and subject read as words, left-aligned; figures right-aligned.
            text = [cell.ljust(width) if column < 2 else cell.rjust(width)
                    for column, (cell, width) in enumerate(zip(line, widths))]
            lines.append("  " + "  ".join(text).rstrip())
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", required=True)
    parser.add_argument("--machine", required=True)
    parser.add_argument("--command", required=True)
    parser.add_argument("--mode", required=True)
    parser.add_argument("--json", required=True)
    parser.add_argument("--have-bindfs", required=True)
    parser.add_argument("--duration", required=True, type=float)
    options = parser.parse_args()

    machine = json.loads(options.machine)
    rows = summarize(read_groups(options.records))
    print("secretfs benchmark: {}  ({} mode, {:.0f} s)".format(
        options.command, options.mode, options.duration))
    print("machine: {cpu}, {cores} cores, {kernel}, {memory}; work folder on {work_filesystem}; "
          "commit {commit}, {date}".format(**machine))
    print("figures are medians of the repetitions (reps); ratios compare medians of one case")
    if options.have_bindfs != "yes":
        print("bindfs is not installed: the bindfs rows are missing")
    print(table(rows))

    result = {
        "command": options.command,
        "mode": options.mode,
        "machine": machine,
        "duration_s": options.duration,
        "bindfs": options.have_bindfs == "yes",
        "results": rows,
    }
    with open(options.json, "w", encoding="utf-8") as out:
        json.dump(result, out, indent=2)
        out.write("\n")
    print("\nJSON: " + options.json)


if __name__ == "__main__":
    main()
