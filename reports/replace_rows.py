"""Put the rows of a new audit of the same split into a committed reference audit.

    python reports/replace_rows.py BASE NEW [--drop NAME ...]

BASE is a committed audit folder (reports/mnist-cpu), NEW a finished audit of the same
dataset, split and scoring that audited only the regenerated defenses (e.g. the DP-SGD
rows with a new recipe). NEW's rows replace BASE's rows of the same name, the rows named
by --drop are removed (an old recipe the new rows supersede), the others are kept
unchanged; BASE/results.json records which rows came from which audit
(``regenerated_rows``), its signals.npz holds NEW's signals beside BASE's, and the report
is rendered again. See ``mi_defense.auditing.merge``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import mi_defense
from mi_defense.auditing import merge, signals
from mi_defense.auditing.migrate import migrate
from mi_defense.auditing.record import AuditRecord
from mi_defense.errors import UserError
from mi_defense.io import read_json, write_json


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("base", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument("--drop", action="append", default=[], metavar="NAME", help="a row of BASE to remove (repeatable)")
    a = p.parse_args(argv)
    try:
        base = migrate(read_json(a.base / "results.json", "audit results"))
        new = migrate(read_json(a.new / "results.json", "audit results"))
        AuditRecord.from_json(base), AuditRecord.from_json(new)  # both readable before they are merged
        merged = merge.merge_results(base, new, a.drop)
        AuditRecord.from_json(merged)  # the merged record must read back before anything is replaced
        old = signals.path_in(a.base)
        sig = merge.merge_signals(signals.load(old) if old.is_file() else None, signals.load(signals.path_in(a.new)),
                                  keep=[e.get("key") for e in merged["defenses"]])
        signals.save(old, **sig)
        write_json(a.base / "results.json", merged)
        mi_defense.report(a.base)
    except UserError as e:
        print(f"replace_rows: {e}", file=sys.stderr)
        return 2
    rows = ", ".join(e["name"] for e in new["defenses"])
    print(f"{a.base}: rows {rows} from {a.new}" + (f"; dropped {', '.join(a.drop)}" if a.drop else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
