"use strict";
// The rater's page: no network, no server; the per-rater order is qwen_tts_lit/listening/order.py's, step for step.
const DATA = JSON.parse(document.getElementById("test-data").textContent);
const COLUMNS = ["test_id", "design", "rater", "trial", "trial_kind", "order", "stimulus", "stimulus_b", "rating",
  "seconds", "saved_at"];
const PREFIX = "qwen_tts_lit.listen:" + DATA.test_id + ":";
const $ = (id) => document.getElementById(id);

function fnv1a(text) {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h;
}

function mulberry32(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t = (t + Math.imul(t ^ (t >>> 7), t | 61)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle(values, draw) {
  const out = values.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(draw() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

// The trials in the order this rater hears them, each with its stimuli as shown (A/B swapped, MUSHRA shuffled).
function presentation(rater) {
  const draw = mulberry32(fnv1a(DATA.test_id + ":" + rater));
  const practice = shuffle(DATA.trials.filter((t) => t.kind === "practice"), draw);
  const rest = shuffle(DATA.trials.filter((t) => t.kind !== "practice"), draw);
  return practice.concat(rest).map((trial, order) => {
    let stimuli = trial.stimuli.slice();
    if (DATA.paired) { if (draw() < 0.5) stimuli.reverse(); }
    else if (DATA.multi) stimuli = shuffle(stimuli, draw);
    return Object.assign({}, trial, { stimuli: stimuli, order: order });
  });
}

let storage = null;
try { localStorage.setItem(PREFIX + "probe", "1"); localStorage.removeItem(PREFIX + "probe"); storage = localStorage; }
catch (error) { storage = null; }

let S = null, ORDER = [], position = 0, shownAt = 0, audio = {}, played = new Set(), answer = null;

function saved(rater) {
  if (!storage) return null;
  try { return JSON.parse(storage.getItem(PREFIX + rater)); } catch (error) { return null; }
}
function keep() {
  if (!storage) return;
  storage.setItem(PREFIX + S.rater, JSON.stringify(S));
  storage.setItem(PREFIX + "last", S.rater);
}

function stopAll() {
  for (const [file, element] of Object.entries(audio)) { element.pause(); element.currentTime = 0; }
  document.querySelectorAll("button.play").forEach((b) => b.classList.remove("playing"));
}

function playButton(file, label) {
  const button = document.createElement("button");
  button.className = "play";
  button.dataset.file = file;
  button.textContent = "\u25B6 " + label;
  if (!audio[file]) {
    audio[file] = new Audio("audio/" + file);
    audio[file].preload = "auto";
    audio[file].addEventListener("ended", () => button.classList.remove("playing"));
  }
  button.addEventListener("click", () => {
    const wasPlaying = button.classList.contains("playing");
    stopAll();
    played.add(file);
    button.classList.add("played");
    if (!wasPlaying) { button.classList.add("playing"); audio[file].play().catch(() => {}); }
    update();
  });
  return button;
}

function player(file, label) {
  const box = document.createElement("div");
  box.className = "player";
  box.appendChild(playButton(file, label));
  return box;
}

function choices(labels) {
  const box = document.createElement("div");
  box.className = "choices";
  box.style.setProperty("--n", labels.length);
  for (const [value, text] of labels) {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "radio"; input.name = "rating"; input.value = value;
    input.addEventListener("change", () => { answer = { rating: value }; update(); });
    label.appendChild(input);
    label.appendChild(document.createTextNode(text));
    box.appendChild(label);
  }
  return box;
}

function sliders(trial) {
  const grid = document.createElement("div");
  grid.className = "mushra";
  grid.style.setProperty("--n", trial.stimuli.length);
  const bands = document.createElement("div");
  bands.className = "bands";
  for (const [name] of DATA.bands) { const span = document.createElement("span"); span.textContent = name; bands.appendChild(span); }
  grid.appendChild(bands);
  answer = { ratings: {} };
  trial.stimuli.forEach((file, index) => {
    const column = document.createElement("div");
    column.className = "slider";
    const value = document.createElement("span");
    value.className = "value";
    const range = document.createElement("input");
    range.type = "range"; range.min = 0; range.max = 100; range.step = 1; range.value = 0;
    range.dataset.file = file;
    range.setAttribute("aria-label", "rating of " + (index + 1));
    range.addEventListener("input", () => { answer.ratings[file] = Number(range.value); value.textContent = range.value; update(); });
    column.appendChild(range);
    column.appendChild(value);
    column.appendChild(playButton(file, String(index + 1)));
    grid.appendChild(column);
  });
  return grid;
}

function required(trial) {
  return trial.reference ? trial.stimuli.concat([trial.reference]) : trial.stimuli;
}

function complete(trial) {
  if (!answer) return false;
  if (DATA.multi) return trial.stimuli.every((file) => file in answer.ratings);
  return answer.rating !== undefined;
}

function update() {
  const trial = ORDER[position];
  const unplayed = required(trial).filter((file) => !played.has(file)).length;
  const ready = unplayed === 0 && complete(trial);
  $("next").disabled = !ready;
  $("hint").textContent = ready ? "" : unplayed ? "Play every recording first." : "Answer to continue.";
}

function render() {
  stopAll();
  audio = {}; played = new Set(); answer = null;
  const trial = ORDER[position];
  const practice = ORDER.filter((t) => t.kind === "practice").length;
  const isPractice = trial.kind === "practice";
  $("where").textContent = isPractice ? "Practice " + (position + 1) + " of " + practice + " (not counted)"
    : "Trial " + (position - practice + 1) + " of " + (ORDER.length - practice);
  const answered = Object.keys(S.answers).length;
  $("progress-text").textContent = answered + " of " + ORDER.length + " done";
  $("bar").style.width = (100 * answered / ORDER.length) + "%";
  $("question").textContent = DATA.question;
  const players = $("players"), rating = $("rating");
  players.innerHTML = ""; rating.innerHTML = "";
  if (trial.reference) players.appendChild(player(trial.reference, "Reference"));
  if (DATA.multi) rating.appendChild(sliders(trial));
  else {
    if (DATA.paired) { players.appendChild(player(trial.stimuli[0], "A")); players.appendChild(player(trial.stimuli[1], "B")); }
    else players.appendChild(player(trial.stimuli[0], trial.reference ? "Recording" : "Play"));
    rating.appendChild(choices(DATA.labels));
  }
  shownAt = performance.now();
  update();
}

function next() {
  const trial = ORDER[position];
  S.answers[trial.trial] = Object.assign({}, answer, {
    seconds: Math.round((performance.now() - shownAt) / 100) / 10,
    saved_at: new Date().toISOString(),
  });
  keep();
  advance();
}

function advance() {
  position = ORDER.findIndex((t) => !(t.trial in S.answers));
  if (position < 0) finish(); else render();
}

function csvCell(value) {
  const text = value === undefined || value === null ? "" : String(value);
  return /[",\r\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
}

// One row per rated stimulus (mos, smos, mushra) or per trial (cmos, ab: A and B as shown), in presentation order.
function csvText() {
  const lines = [COLUMNS.join(",")];
  for (const trial of ORDER) {
    const a = S.answers[trial.trial];
    if (!a) continue;
    const base = [DATA.test_id, DATA.design, S.rater, trial.trial, trial.kind, trial.order];
    const rows = DATA.paired ? [[trial.stimuli[0], trial.stimuli[1], a.rating]]
      : DATA.multi ? trial.stimuli.map((file) => [file, "", a.ratings[file]])
      : [[trial.stimuli[0], "", a.rating]];
    for (const row of rows) lines.push(base.concat(row, [a.seconds, a.saved_at]).map(csvCell).join(","));
  }
  return lines.join("\n") + "\n";
}

function fileName() {
  return DATA.test_id + "_" + S.rater.replace(/[^A-Za-z0-9_-]+/g, "_") + ".csv";
}

function finish() {
  stopAll();
  $("trial").hidden = true;
  $("done").hidden = false;
  const link = $("download");
  link.href = URL.createObjectURL(new Blob([csvText()], { type: "text/csv" }));
  link.download = fileName();
  $("filename").textContent = fileName();
}

function begin() {
  const rater = $("rater").value.trim();
  if (!rater) { $("resume").textContent = "Type your rater id first."; return; }
  S = saved(rater) || { rater: rater, answers: {} };
  ORDER = presentation(rater);
  $("start").hidden = true;
  $("trial").hidden = false;
  keep();
  advance();
}

function init() {
  document.title = DATA.title;
  $("instructions").textContent = DATA.instructions;
  const practice = DATA.trials.filter((t) => t.kind === "practice").length;
  $("count").textContent = "There are " + DATA.trials.length + " trials" + (practice === 0 ? "." : practice === 1
    ? "; the first one is practice (not counted)." : "; the first " + practice + " are practice (not counted).");
  $("storage").hidden = storage !== null;
  const last = storage ? storage.getItem(PREFIX + "last") : null;
  const previous = last ? saved(last) : null;
  if (previous) {
    $("rater").value = last;
    $("resume").textContent = "Rater \u201C" + last + "\u201D has answered " + Object.keys(previous.answers).length +
      " of " + DATA.trials.length + " trials in this browser: press Start to continue.";
  }
  $("begin").addEventListener("click", begin);
  $("rater").addEventListener("keydown", (event) => { if (event.key === "Enter") begin(); });
  $("next").addEventListener("click", next);
}

init();
