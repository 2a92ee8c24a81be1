"""The file names of a segment output folder (one owner; docs/segment.md, "Output", lists them)."""

CLIPS_DIR = "clips"  # <clip id>.wav, 24 kHz mono 16-bit, every clip whatever its status (the sheet plays them)
WORK_DIR = ".work"  # caches: scans, clip ledgers, measurements; what makes a re-run or a resumed run cheap
MANIFEST = "train_raw.jsonl"  # the kept clips, prepare's input; removed first and written last
SHEET = "review.csv"  # the proofreading sheet a person edits
PAGE = "review.html"  # the listening page
RECORDS = "clips.jsonl"  # every clip with everything measured about it
SUMMARY_JSON, SUMMARY_TXT = "summary.json", "summary.txt"
CONFIG = "segment_config.json"  # the options of the run that wrote the folder
