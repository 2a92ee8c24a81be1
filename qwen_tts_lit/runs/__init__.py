"""The run folder contract: the only code that spells a run-folder file name (but the x-vector file's, which
:mod:`qwen_tts_lit.speaker_file` owns: prepared datasets and adapter exports hold the same file).

A run folder (``runs/NAME/version_N``, Lightning's log dir, or ``ROOT/VARIANT/seed_S`` from ``ablate``) holds::

    config.yaml            the resolved LightningCLI config (every default spelled out)
    hparams.yaml           the module's hyper-parameters
    metrics.csv            CSVLogger: train/*, val/*, time/* per step and epoch
    events.out.tfevents.*  TensorBoard
    <speaker file>         the target voice's x-vector (tensor ``xvector``), or every speaker's (``xvectors``);
                           its name: ``speaker_file.SPEAKER_FILE``
    checkpoints/           epoch=NNN.ckpt per epoch and last.ckpt: trained tensors, optimizer state, x-vector(s)
    eval/rows.jsonl        one JSON row per synthesized utterance
    eval/epoch=NNN/scale=S/ID.wav, eval/real/ID.wav   the synthesized audio and copies of the real recordings
    best.json              the chosen (epoch, lora_scale) cell, its metrics and the rule
    report.html            the listening report
    ablate.yaml, ablate.json   only in ablation runs: the run's overlay and its exit status
    submission.json        only in ablation runs: the launcher, the exact submission, each attempt's job/node/GPU

Modules: :mod:`~qwen_tts_lit.runs.run` (a run opened once: what the verbs pass on), :mod:`~qwen_tts_lit.runs.folder`
(names, saved epochs), :mod:`~qwen_tts_lit.runs.records` (rows, best, report), :mod:`~qwen_tts_lit.runs.config` (the
saved config), :mod:`~qwen_tts_lit.runs.choice` (which epoch and scale) and :mod:`~qwen_tts_lit.runs.weights` (an
epoch's weights on the base model). The x-vector file, which prepared datasets and adapter exports share, is
:mod:`qwen_tts_lit.speaker_file`.
"""
