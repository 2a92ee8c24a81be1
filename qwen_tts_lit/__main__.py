from qwen_tts_lit.cli import main

raise SystemExit(main())
