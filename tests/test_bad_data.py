"""Bad DATA files, as users really send them, given to data.load(task, file): each is either refused with a clear
error that names the file, the row or column and what to do, or read with every choice the loader made printed
with its count. Nothing is silently changed or dropped, and no library traceback comes without the file's name.

The files are built here the way their tools write them: spreadsheet exports (cp1252, ';' separators, a BOM,
UTF-16 "Unicode text"), pandas' to_json/to_csv layouts, files with a `split` column, Parquet files.
"""

from __future__ import annotations

import json
import re

import pytest

from gptforall_utils import data

SENT = [{"text": f"review number {i} of a film , {'great' if i % 2 else 'dull'} .", "label": i % 2} for i in range(10)]
MED = [{"text": f"Abstract {i}: a study of condition {i % 5}.", "label": i % 5} for i in range(15)]
MC = [{"id": f"q{i}", "question": f"Question {i}?", "choices": ["red", "blue", "green", "white"], "answer": i % 4}
      for i in range(6)]


def jsonl(records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def csv_bytes(header, rows, sep=",", encoding="utf-8", newline="\r\n") -> bytes:
    def field(v):
        v = str(v)
        return '"' + v.replace('"', '""') + '"' if any(ch in v for ch in (sep, '"', "\n")) else v
    lines = [sep.join(header)] + [sep.join(field(v) for v in row) for row in rows]
    return (newline.join(lines) + newline).encode(encoding)


def with_split(records, splits):
    return [{**r, "split": s} for r, s in zip(records, splits)]


# (id, task, file name, content, message the error must contain: a regex)
REFUSED = [
    ("medical-label-1-based-top-absent", "medical", "med.jsonl",
     jsonl([{"text": f"Abstract {i}.", "label": 1 + i % 4} for i in range(12)]),
     r"med\.jsonl: `label` holds the codes \[1, 2, 3, 4\] and never 0.*0 neoplasms.*1 neoplasms.*condition_label"),
    ("sentiment-label-1-2", "sentiment", "rt.csv",
     csv_bytes(["text", "label"], [[f"film {i}", 1 + i % 2] for i in range(8)]),
     r"rt\.csv: `label` holds the codes \[1, 2\] and never 0.*0 negative, 1 positive.*class names"),
    ("csv-repeated-header", "sentiment", "dup_header.csv",
     csv_bytes(["text", "label", "label"], [[f"film {i}", i % 2, 1 - i % 2] for i in range(8)]),
     r"dup_header\.csv: the header names column 'label' twice \(columns 2 and 3\).*Rename or delete"),
    ("split-typo", "sentiment", "typo.jsonl",
     jsonl(with_split(SENT, ["train"] * 7 + ["tset"] * 3)),
     r"typo\.jsonl: rows 7, 8, 9 have split 'tset' \(did you mean 'test'\?\).*use exactly train, validation, test"),
    ("split-capitalised", "medical", "caps.csv",
     csv_bytes(["text", "label", "split"], [[r["text"], r["label"], "Train" if i < 10 else "test"]
                                            for i, r in enumerate(MED)]),
     r"caps\.csv: rows 0, 1, .* have split 'Train' \(did you mean 'train'\?\)"),
    ("split-null", "sentiment", "null_split.jsonl",
     jsonl(with_split(SENT, ["train"] * 6 + [None] + ["test"] * 3)),
     r"null_split\.jsonl: row 6 has no `split` value.*drop the `split` column"),
    ("split-empty-in-csv", "sentiment", "blank_split.csv",
     csv_bytes(["text", "label", "split"], [[r["text"], r["label"], "" if i == 2 else "train" if i < 7 else "test"]
                                            for i, r in enumerate(SENT)]),
     r"blank_split\.csv: row 2 has no `split` value"),
    ("single-class", "sentiment", "all_positive.jsonl",
     jsonl([{"text": f"a fine film number {i}", "label": "positive"} for i in range(10)]),
     r"all_positive\.jsonl: the train split holds one class only \(\['positive'\]\).*at least 2"),
    ("single-class-train-only", "medical", "one_train_class.jsonl",
     jsonl(with_split([{"text": f"Abstract {i}.", "label": "neoplasms" if i < 8 else LAB}
                       for i, LAB in zip(range(10), ["neoplasms"] * 8 + ["digestive system diseases"] * 2)],
                      ["train"] * 8 + ["test"] * 2)),
     r"one_train_class\.jsonl: the train split holds one class only \(\['neoplasms'\]\)"),
    ("mc-answer-out-of-range", "multiple_choice", "mc.jsonl",
     jsonl(MC[:3] + [{**MC[3], "answer": 4}]),
     r"mc\.jsonl: row 3 \(id 'q3'\) has answer 4 but 4 choices.*0\.\.3"),
    ("mc-answer-letter", "multiple_choice", "mc_letter.jsonl",
     jsonl([{**r, "answer": "ABCD"[i % 4]} for i, r in enumerate(MC)]),
     r"mc_letter\.jsonl: row 0 \(id 'q0'\) has answer 'A'.*It is a letter: give the index instead \('A' -> 0\)"),
    ("mc-choices-a-string", "multiple_choice", "mc_str.jsonl",
     jsonl([{**r, "choices": "A) red B) blue C) green"} for r in MC]),
     r"mc_str\.jsonl: row 0 \(id 'q0'\) has `choices` as one text.*must be a list of the choice texts"),
    ("mc-choices-csv", "multiple_choice", "mc.csv",
     csv_bytes(["id", "question", "choices", "answer"], [[r["id"], r["question"], "red|blue", 0] for r in MC]),
     r"mc\.csv: row 0 \(id 'q0'\) has `choices` as one text.*a CSV cannot hold a list"),
    ("mc-answer-is-the-text", "multiple_choice", "mc_text_answer.jsonl",
     jsonl([{**r, "answer": "blue"} for r in MC]),
     r"mc_text_answer\.jsonl: row 0 \(id 'q0'\) has answer 'blue'; `answer` is the 0-based index"),
    ("mc-duplicate-ids", "multiple_choice", "mc_dup.jsonl",
     jsonl(MC[:4] + [{**MC[4], "id": "q1"}]),
     r"mc_dup\.jsonl: rows 1 and 4 have the same id 'q1'"),
    ("benchmark-duplicate-ids", "benchmark_questions", "questions.jsonl",
     jsonl([{"question_id": 81 + (i % 3), "category": "writing", "turns": [f"Write {i}.", "Shorter."]}
            for i in range(4)]),
     r"questions\.jsonl: rows 0 and 3 have the same question_id 81"),
    ("benchmark-split-dev", "benchmark_questions", "q_dev.jsonl",
     jsonl([{"question_id": i, "category": "math", "question": f"{i}+1?", "followup": "", "split": "dev"}
            for i in range(3)]),
     r"q_dev\.jsonl: rows 0, 1, 2 have split 'dev'.*the task needs 'test' rows"),
    ("mixed-label-types", "sentiment", "mixed.json",
     json.dumps([{"text": "good film", "label": 1}, {"text": "bad film", "label": "negative"}] * 3).encode(),
     r"mixed\.json: column 'label' mixes a number and text: row 0 has 1, row 1 has 'negative'.*all label codes"),
    ("number-where-text-belongs", "instructions", "numbers.jsonl",
     jsonl([{"instruction": "Add 2 and 2.", "context": "", "response": 4, "category": "open_qa"},
            {"instruction": "Name a colour.", "context": "", "response": "Red.", "category": "open_qa"}] * 3),
     r"numbers\.jsonl: column 'response' mixes a number and text: row 0 has 4.*write numbers as \"42\""),
    ("all-numbers-in-a-text-column", "lm_text", "numbers_only.jsonl",
     jsonl([{"text": 3.14}, {"text": 2.71}, {"text": 1.41}]),
     r"numbers_only\.jsonl: rows 0, 1, 2 have a non-text 'text'"),
    ("csv-extra-field", "sentiment", "extra.csv",
     b"text,label\r\ngood film,1\r\nslow, dull and long,0\r\nfine,1\r\nbad,0\r\n",
     r"extra\.csv: the record on line 3 has 3 fields but the header has 2 \(text, label\).*Quote such fields"),
    ("csv-unclosed-quote", "sentiment", "quote.csv",
     b'text,label\r\ngood film,1\r\n"a film with a "quote,0\r\nfine,1\r\nbad,0\r\n',
     r"quote\.csv: (line 3 is not valid CSV|the record starting on line 3 runs to line \d+.*not closed)"),
    ("csv-unclosed-quote-at-start", "sentiment", "open_quote.csv",
     b'text,label\r\ngood film,1\r\n"a film that never ends,0\r\nfine,1\r\nbad,0\r\n',
     r"open_quote\.csv: the record starting on line 3 runs to line \d+.*a quote .* is not closed"),
    ("csv-missing-field", "medical", "short.csv",
     b"text,label\nAbstract one.,0\nAbstract two.\nAbstract three.,2\n",
     r"short\.csv: the record on line 3 has 1 fields but the header has 2 \(text, label\); missing: label"),
    ("corrupt-parquet", "sentiment", "broken.parquet", b"PAR1" + b"\x00garbage" * 20,
     r"broken\.parquet is not a readable Parquet file.*export it again"),
    ("truncated-parquet", "sentiment", "cut.parquet", None,  # built below: a real file cut in half
     r"cut\.parquet is not a readable Parquet file"),
    ("json-record-not-an-object", "sentiment", "strings.json", json.dumps(["good film", "bad film"]).encode(),
     r"strings\.json: record 0 is text \('good film'\), not a JSON object"),
    ("jsonl-bad-line", "sentiment", "bad_line.jsonl", b'{"text": "good", "label": 1}\n{"text": "bad", label: 0}\n',
     r"bad_line\.jsonl:2 is not valid JSON.*one JSON object"),
    ("spreadsheet-file", "sentiment", "reviews.xlsx", b"PK\x03\x04 not really a workbook",
     r"reviews\.xlsx must be \.jsonl, \.json, \.csv, \.parquet \(save a spreadsheet as CSV UTF-8\)"),
    ("header-only-csv", "medical", "empty.csv", b"text,label\r\n", r"empty\.csv is empty; the medical task needs"),
    ("medical-both-codings", "medical", "both.jsonl",
     jsonl([{"medical_abstract": "An abstract.", "condition_label": 1, "label": 0}] * 3),
     r"both\.jsonl has both `condition_label`.*and `label`"),
    ("medical-condition-label-zero", "medical", "zero.csv",
     csv_bytes(["condition_label", "medical_abstract"], [[i % 5, f"Abstract {i}."] for i in range(10)]),
     r"zero\.csv: row 0 has condition_label '0'.*1-based.*1 neoplasms.*`label`"),
    ("sentiment-unknown-label-name", "sentiment", "neutral.jsonl",
     jsonl([{"text": "ok film", "label": "neutral"}, {"text": "good film", "label": "positive"}] * 2),
     r"neutral\.jsonl: row 0 has label 'neutral'.*names \['negative', 'positive'\]"),
    ("dialogsum-wrong-column", "dialogsum", "dialogues.jsonl",
     jsonl([{"dialogue": "#Person1#: Hi.\n#Person2#: Hello.", "summary1": "They greet."}] * 3),
     r"dialogues\.jsonl lacks column\(s\) summary.*Found: dialogue, summary1"),
    ("every-train-row-leaks", "sentiment", "leak_all.jsonl",
     jsonl(with_split(SENT[:4] + SENT[:4], ["train"] * 4 + ["test"] * 4)),
     r"leak_all\.jsonl: every train row also occurs in the held-out split\(s\)"),
    ("empty-response", "instructions", "alpaca.json",
     json.dumps([{"instruction": "Name a fruit.", "input": "", "output": "Apple."},
                 {"instruction": "Name a tree.", "input": "", "output": ""}] * 2).encode(),
     r"alpaca\.json: rows 1, 3 have an empty 'response'.*\?drop_empty"),
    ("preferences-without-rejected", "preferences", "prefs.jsonl", jsonl([{"prompt": "p", "chosen": "a"}] * 2),
     r"prefs\.jsonl lacks column\(s\) rejected"),
    ("preferences-rejected-equals-chosen", "preferences", "ties.jsonl",
     jsonl([{"prompt": f"Question {i}?", "chosen": f"Answer {i}.", "rejected": f"Answer {i}." if i == 2 else ""}
            for i in range(4)]),
     r"ties\.jsonl: row\(s\) 2 have `rejected` equal to `chosen`.*leave `rejected` empty"),
]


def write(tmp_path, name: str, content: bytes | None):
    path = tmp_path / name
    if content is None:  # a real Parquet file, cut in half (an interrupted download)
        import pyarrow as pa
        import pyarrow.parquet as pq

        whole = tmp_path / "whole.parquet"
        pq.write_table(pa.Table.from_pylist(SENT), whole)
        content = whole.read_bytes()[: whole.stat().st_size // 2]
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(("task", "name", "content", "message"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_bad_file_is_refused_naming_the_file_and_the_fix(tmp_path, task, name, content, message):
    path = write(tmp_path, name, content)
    with pytest.raises((ValueError, FileNotFoundError)) as info:
        data.load(task, str(path), seed=0)
    text = str(info.value)
    assert str(path) in text, text  # the file's full path, whatever the problem
    assert re.search(message, text, re.DOTALL), text


def test_a_folder_is_not_reported_as_missing(tmp_path):
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "reviews.csv").write_bytes(csv_bytes(["text", "label"], [["good", 1], ["bad", 0]]))
    with pytest.raises(ValueError, match=r"exports is a folder, not a file; give one .* file in it, e.g. .*reviews\.csv"):
        data.load("sentiment", str(tmp_path / "exports"))


def test_a_missing_file_says_where_relative_paths_start(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.csv does not exist \(relative paths start at "):
        data.load("sentiment", str(tmp_path / "nope.csv"))


def test_an_unknown_option_says_no_file_has_that_name(tmp_path):
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['v2\.csv'\] after '\?'.*No file is named"):
        data.load("sentiment", str(tmp_path / "reviews?v2.csv"))


# ---------------------------------------------------------------- read, with every choice printed and counted
def loaded_texts(dd) -> set[str]:
    return {t for split in dd.values() for t in split["text"]}


def test_cp1252_semicolon_export_with_accents_is_read_and_says_so(tmp_path, capsys):
    rows = [["Un film très réussi – bravo", "positive"], ["Trop long, ennuyeux…", "negative"],
            ["Café crème: excellent", "positive"], ["Décevant", "negative"]]
    path = write(tmp_path, "excel_fr.csv", csv_bytes(["text", "label"], rows, sep=";", encoding="cp1252"))
    dd = data.load("sentiment", str(path), seed=0)
    out = capsys.readouterr().out
    assert re.search(r"excel_fr\.csv: not UTF-8 \(byte \d+ is 0x[0-9a-f]{2}\); read as cp1252.*: \d+ non-ASCII", out)
    assert "excel_fr.csv: read as CSV separated by ';'" in out
    assert loaded_texts(dd) == {r[0] for r in rows}  # the accents, the dash and the ellipsis as written


def test_latin1_file_with_a_byte_cp1252_lacks_is_read_as_latin1(tmp_path, capsys):
    content = "text,label\r\nna\u00efve but fine,1\r\nboring\u0081,0\r\nlovely,1\r\nawful,0\r\n".encode("latin-1")
    dd = data.load("sentiment", str(write(tmp_path, "old.csv", content)), seed=0)
    assert re.search(r"old\.csv: not UTF-8 .*read as latin-1 \(ISO-8859-1\): 2 non-ASCII", capsys.readouterr().out)
    assert "na\u00efve but fine" in loaded_texts(dd)


def test_excel_unicode_text_utf16_tab_separated_is_read_and_says_so(tmp_path, capsys):
    rows = [["good – really", "1"], ["bad", "0"], ["great", "1"], ["poor", "0"]]
    content = "\ufeff".encode("utf-16-le") + csv_bytes(["text", "label"], rows, sep="\t").decode().encode("utf-16-le")
    dd = data.load("sentiment", str(write(tmp_path, "unicode.csv", content)), seed=0)
    out = capsys.readouterr().out
    assert "unicode.csv: read as UTF-16" in out and "separated by '\\t'" in out
    assert loaded_texts(dd) == {r[0] for r in rows}


def test_utf8_bom_from_excel_csv_utf8_keeps_the_header(tmp_path, capsys):
    rows = [["good", "positive"], ["bad", "negative"], ["fine", "positive"], ["poor", "negative"]]
    content = b"\xef\xbb\xbf" + csv_bytes(["text", "label"], rows)  # Excel's "CSV UTF-8": a BOM before the header
    dd = data.load("sentiment", str(write(tmp_path, "bom.csv", content)), seed=0)
    assert loaded_texts(dd) == {"good", "bad", "fine", "poor"}  # `text` found: the BOM is not part of its name
    assert capsys.readouterr().out == ""  # plain UTF-8: no choice made, nothing to report


@pytest.mark.parametrize("orient", ["columns", "split", "index", "table", "records"])
def test_pandas_to_json_layouts_are_read_and_named(tmp_path, capsys, orient):
    import pandas as pd

    path = tmp_path / f"df_{orient}.json"
    pd.DataFrame(SENT).to_json(path, orient=orient)
    dd = data.load("sentiment", str(path), seed=0)
    assert loaded_texts(dd) == {r["text"] for r in SENT}
    labels = {t: lab for split in dd.values() for t, lab in zip(split["text"], split["label"])}
    assert labels == {r["text"]: r["label"] for r in SENT}
    out = capsys.readouterr().out
    assert (f"read as pandas' to_json(orient={orient!r}) layout: 10 records" in out) == (orient != "records")


def test_pandas_lines_and_to_csv_with_its_index(tmp_path, capsys):
    import pandas as pd

    df = pd.DataFrame(MED)
    df.to_json(tmp_path / "lines.jsonl", orient="records", lines=True)
    assert len(data.load("medical", str(tmp_path / "lines.jsonl"))["test"]) == 3
    df.to_csv(tmp_path / "indexed.csv")  # index=True: a first column without a name
    dd = data.load("medical", str(tmp_path / "indexed.csv"), seed=0)
    assert "indexed.csv: 1 column(s) without a name in the header" in capsys.readouterr().out
    assert sorted(t for s in dd.values() for t in s["label"]) == sorted(r["label"] for r in MED)


def test_a_json_array_in_a_jsonl_file_is_read_and_says_so(tmp_path, capsys):
    path = write(tmp_path, "array.jsonl", json.dumps(SENT, indent=2).encode())
    dd = data.load("sentiment", str(path), seed=0)
    assert "array.jsonl: holds one JSON array, not JSON Lines; read as the array's 10 records" in capsys.readouterr().out
    assert loaded_texts(dd) == {r["text"] for r in SENT}


def test_a_question_mark_in_an_existing_file_name_is_the_file(tmp_path):
    path = write(tmp_path, "reviews?v2.jsonl", jsonl(SENT))
    assert loaded_texts(data.load("sentiment", str(path), seed=0)) == {r["text"] for r in SENT}


def test_a_csv_field_over_128k_characters_is_read_whole(tmp_path):
    abstract = "Long abstract. " + "word " * 40_000  # 200K characters: over csv's default field limit
    rows = [[abstract if i == 0 else f"Abstract {i}.", i % 5] for i in range(10)]
    dd = data.load("medical", str(write(tmp_path, "long.csv", csv_bytes(["text", "label"], rows))), seed=0)
    assert abstract in {t for s in dd.values() for t in s["text"]}


def test_exact_duplicates_are_dropped_and_counted(tmp_path, capsys):
    path = write(tmp_path, "dups.jsonl", jsonl(SENT + SENT[:2]))
    dd = data.load("sentiment", str(path), seed=0)
    assert re.search(r"dups\.jsonl: dropped 2 exact duplicate row\(s\) of 12 \(rows 10, 11 have the same values",
                     capsys.readouterr().out)
    assert sum(len(s) for s in dd.values()) == 10


def test_a_train_row_repeated_in_test_is_dropped_from_train_and_counted(tmp_path, capsys):
    records = with_split(SENT, ["train"] * 7 + ["test"] * 3) + [{**SENT[8], "split": "train"}]
    dd = data.load("sentiment", str(write(tmp_path, "leak.jsonl", jsonl(records))), seed=0)
    out = capsys.readouterr().out
    assert re.search(r"leak\.jsonl: dropped 1 train row\(s\) whose text also occur\(s\) in a held-out split", out)
    assert len(dd["test"]) == 3 and len(dd["train"]) == 7 and not set(dd["train"]["text"]) & set(dd["test"]["text"])


def test_the_same_text_with_two_labels_is_kept_and_reported(tmp_path, capsys):
    records = SENT + [{"text": SENT[0]["text"], "label": 1 - SENT[0]["label"]}]
    dd = data.load("sentiment", str(write(tmp_path, "conflict.jsonl", jsonl(records))), seed=0)
    assert "conflict.jsonl: 1 text(s) occur with different labels; kept as given" in capsys.readouterr().out
    assert sum(len(s) for s in dd.values()) == 11


def test_zero_based_codes_with_every_class_load_unchanged(tmp_path):
    dd = data.load("medical", str(write(tmp_path, "ok.jsonl", jsonl(MED))), seed=0)
    got = {t: lab for s in dd.values() for t, lab in zip(s["text"], s["label"])}
    assert got == {r["text"]: r["label"] for r in MED}  # never shifted
