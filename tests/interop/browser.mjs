// Drive headless Chromium (Debian's package, through playwright-core) from one JSON script on
// stdin; write one JSON observation per line to stdout, diagnostics to stderr.
//
// Script:
//   {"contexts": {"alice": {}, "erin": {"viewport": {"width": 800, "height": 600}}},
//    "steps": [{"op": "goto", "context": "alice", "url": "http://127.0.0.1:PORT/"}, ...],
//    "timeout_ms": 60000,          // whole run (default 60 s); exit 2 when it runs out
//    "step_timeout_ms": 10000}     // default bound of each waiting step (default 10 s)
// Each context is a separate browser context (own cookie jar and storage) with one page (a
// step's optional "page": NAME opens and then uses another tab of that context, sharing its
// cookies, while the first keeps running: e.g. the provider's logout page beside the app); its
// value is passed to Playwright's browser.newContext() as options. Steps name their context.
// Ops, see STEP_OPS below; single-element ops use Playwright locators (strict: a selector
// matching several elements is a step error; `texts` reads all matches).
//
// Exit: 0 when the script ran to its end (a failing step is an observation, `step_error`,
// which ends the steps); 1 on a harness error (bad JSON, unknown op or context, launch
// failure); 2 when the global timeout ran out. `{"type": "done"}` is written last on exit 0.
//
// Launch: executablePath /usr/bin/chromium (Debian's package) or env CHROMIUM_PATH, headless,
// with the flags this machine needs (no background networking: its closed network refuses
// such connections). The profile (user-data-dir) is new and empty: Playwright creates it under
// os.tmpdir(), which this script points at a temp folder of its own, removed at exit.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_STEP_TIMEOUT_MS = 10_000;
const CLOSE_TIMEOUT_MS = 5_000;
const MESSAGE_MAX_CHARS = 2_000;
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

// op -> required fields (besides `op` and `context`).
const STEP_OPS = {
  goto: ["url"],
  fill: ["selector", "value"],
  click: ["selector"],
  press: ["selector", "key"],
  wait_for_selector: ["selector"],
  wait_for_url: ["pattern"],
  text: ["selector"],
  texts: ["selector"],
  attribute: ["selector", "name"],
  eval: ["expression"],
  screenshot: ["path"],
  cookies: [],
  sleep: ["ms"],
  wait_for_function: ["expression"],
};

class HarnessError extends Error {}

function emit(observation) {
  // Writes to a pipe are synchronous on Linux: nothing is lost at process.exit().
  process.stdout.write(`${JSON.stringify(observation)}\n`);
}

function log(message) {
  process.stderr.write(`browser.mjs: ${message}\n`);
}

function clip(text) {
  const value = String(text).replace(/\x1b\[[0-9;]*m/g, ""); // Playwright colours its call logs
  return value.length > MESSAGE_MAX_CHARS ? `${value.slice(0, MESSAGE_MAX_CHARS)}...` : value;
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

function parseScript(text) {
  let script;
  try {
    script = JSON.parse(text);
  } catch (error) {
    throw new HarnessError(`the script on stdin is not JSON: ${error.message}`);
  }
  if (script === null || typeof script !== "object" || Array.isArray(script)) {
    throw new HarnessError("the script must be a JSON object");
  }
  const contexts = script.contexts ?? {};
  if (typeof contexts !== "object" || Array.isArray(contexts) || !Object.keys(contexts).length) {
    throw new HarnessError("`contexts` must be an object naming at least one context");
  }
  const steps = script.steps ?? [];
  if (!Array.isArray(steps)) throw new HarnessError("`steps` must be a list");
  steps.forEach((step, index) => {
    if (step === null || typeof step !== "object") {
      throw new HarnessError(`step ${index} is not an object`);
    }
    const required = STEP_OPS[step.op];
    if (required === undefined) throw new HarnessError(`step ${index}: unknown op ${step.op}`);
    if (!Object.hasOwn(contexts, step.context)) {
      throw new HarnessError(`step ${index}: unknown context ${step.context}`);
    }
    for (const field of required) {
      if (!Object.hasOwn(step, field)) {
        throw new HarnessError(`step ${index} (${step.op}): missing field ${field}`);
      }
    }
  });
  return {
    contexts,
    steps,
    timeoutMs: script.timeout_ms ?? DEFAULT_TIMEOUT_MS,
    stepTimeoutMs: script.step_timeout_ms ?? DEFAULT_STEP_TIMEOUT_MS,
  };
}

// "/regex/flags" is a regular expression; anything else a substring of the URL.
function urlMatcher(pattern) {
  const regex = /^\/(.+)\/([a-z]*)$/s.exec(pattern);
  if (regex) {
    const compiled = new RegExp(regex[1], regex[2]);
    return (href) => compiled.test(href);
  }
  return (href) => href.includes(pattern);
}

function cookieRecord(cookie) {
  return {
    name: cookie.name,
    value_length: cookie.value.length,
    domain: cookie.domain,
    path: cookie.path,
    httpOnly: cookie.httpOnly,
    secure: cookie.secure,
    sameSite: cookie.sameSite,
    expires: cookie.expires,
  };
}

function watchPage(page, name) {
  page.on("console", (message) => {
    emit({ type: "console", context: name, level: message.type(), text: message.text() });
  });
  page.on("pageerror", (error) => {
    emit({ type: "pageerror", context: name, message: clip(error.message) });
  });
  page.on("dialog", (dialog) => {
    emit({
      type: "dialog",
      context: name,
      dialog_type: dialog.type(),
      message: dialog.message(),
    });
    dialog.dismiss().catch((error) => log(`dismissing a dialog failed: ${error.message}`));
  });
  page.on("requestfailed", (request) => {
    emit({
      type: "requestfailed",
      context: name,
      url: request.url(),
      failure: request.failure()?.errorText ?? null,
    });
  });
}

async function runStep(step, index, page, defaultTimeout) {
  const timeout = step.timeout_ms ?? defaultTimeout;
  const base = { step: index, context: step.context };
  switch (step.op) {
    case "goto": {
      const response = await page.goto(step.url, { timeout });
      emit({ type: "goto", ...base, url: page.url(), status: response?.status() ?? null });
      return;
    }
    case "fill":
      await page.locator(step.selector).fill(String(step.value), { timeout });
      return;
    case "click":
      await page.locator(step.selector).click({ timeout });
      return;
    case "press":
      await page.locator(step.selector).press(step.key, { timeout });
      return;
    case "wait_for_selector":
      await page.locator(step.selector).first().waitFor({ state: step.state ?? "visible", timeout });
      return;
    case "wait_for_url": {
      const matches = urlMatcher(step.pattern);
      await page.waitForURL((url) => matches(url.href), { timeout });
      emit({ type: "url", ...base, value: page.url() });
      return;
    }
    case "text":
      emit({ type: "text", ...base, value: await page.locator(step.selector).innerText({ timeout }) });
      return;
    case "texts":
      emit({ type: "texts", ...base, value: await page.locator(step.selector).allInnerTexts() });
      return;
    case "attribute": {
      const value = await page.locator(step.selector).getAttribute(step.name, { timeout });
      emit({ type: "attribute", ...base, value });
      return;
    }
    case "eval": {
      const value = await page.evaluate(step.expression);
      emit({ type: "eval", ...base, value: value === undefined ? null : value });
      return;
    }
    case "screenshot": {
      const file = path.resolve(process.cwd(), step.path);
      await page.screenshot({ path: file, fullPage: true, timeout });
      emit({ type: "screenshot", ...base, path: step.path, bytes: fs.statSync(file).size });
      return;
    }
    case "cookies": {
      const cookies = await page.context().cookies(step.urls ?? []);
      emit({ type: "cookies", ...base, value: cookies.map(cookieRecord) });
      return;
    }
    case "sleep":
      await new Promise((resolve) => setTimeout(resolve, step.ms));
      return;
    case "wait_for_function": {
      // Polls page.evaluate (DevTools evaluation) rather than page.waitForFunction, whose
      // string predicates are compiled in the page and so refused by a strict
      // Content-Security-Policy (no 'unsafe-eval'), which is what the pages under test set.
      const deadline = Date.now() + timeout;
      for (;;) {
        const value = await page.evaluate(step.expression).catch(() => undefined);
        if (value) {
          emit({ type: "wait_for_function", ...base, value });
          return;
        }
        if (Date.now() > deadline) throw new Error(`waiting for ${step.expression} timed out`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    default:
      throw new HarnessError(`unknown op ${step.op}`); // parseScript already refused it
  }
}

let browser = null;

// Ends the run with `status`: the reason is written before the browser closes and again
// after it, last, because a closing Chromium can write kilobytes of its own to stderr, which
// would push the reason out of the tail that the test harness reports.
async function finish(status, reason) {
  log(reason);
  await closeBrowser();
  log(`exit ${status}: ${String(reason).split("\n")[0]}`);
  process.exit(status);
}

function closeBrowser() {
  const closing = browser;
  browser = null;
  return closing ? withBound(closing.close().catch(() => {}), CLOSE_TIMEOUT_MS) : Promise.resolve();
}

function withBound(promise, ms) {
  let timer;
  const bound = new Promise((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
}

// Set when the global timeout ran out: whatever the closing browser makes fail in main()
// afterwards (a page or context "has been closed"), the run ends with status 2.
let timedOut = false;

async function main() {
  const script = parseScript(await readStdin());
  const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "ssoio-browser-"));
  process.on("exit", () => {
    // Chromium may still be writing its profile when a timeout or signal ends the run: a
    // removal that races it must not turn the run's exit status into an error of its own
    try {
      fs.rmSync(tmpRoot, { recursive: true, force: true, maxRetries: 3 });
    } catch (error) {
      log(`could not remove ${tmpRoot}: ${error.code}`);
    }
  });
  // Playwright makes the profile (user-data-dir) and its artifacts under os.tmpdir().
  process.env.TMPDIR = tmpRoot;

  let currentStep = null;
  const globalTimer = setTimeout(async () => {
    timedOut = true;
    emit({ type: "timeout", step: currentStep, timeout_ms: script.timeoutMs });
    await finish(2, `global timeout of ${script.timeoutMs} ms ran out at step ${currentStep}`);
  }, script.timeoutMs);

  // Playwright's own handlers only close the browser and leave this process running on.
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"]) {
    process.once(signal, async () => {
      await finish(128 + os.constants.signals[signal], `${signal} at step ${currentStep}`);
    });
  }

  const { chromium } = await import("playwright-core");
  const executablePath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
  try {
    browser = await chromium.launch({
      executablePath,
      args: CHROMIUM_ARGS,
      headless: true,
      handleSIGTERM: false,
      handleSIGINT: false,
      handleSIGHUP: false,
      timeout: Math.min(script.timeoutMs, 30_000),
    });
  } catch (error) {
    throw new HarnessError(`launching ${executablePath} failed: ${error.message}`);
  }
  log(`launched ${executablePath} (${browser.version()})`);

  const pages = {};
  const contexts = {};
  for (const [name, options] of Object.entries(script.contexts)) {
    const context = await browser.newContext(options ?? {});
    context.on("page", (page) => watchPage(page, name));
    contexts[name] = context;
    pages[name] = await context.newPage();
  }
  const pageOf = async (step) => {
    if (step.page === undefined) return pages[step.context];
    const key = `${step.context}/${step.page}`;
    pages[key] ??= await contexts[step.context].newPage();
    return pages[key];
  };

  for (const [index, step] of script.steps.entries()) {
    currentStep = index;
    try {
      await runStep(step, index, await pageOf(step), script.stepTimeoutMs);
    } catch (error) {
      if (error instanceof HarnessError) throw error;
      emit({
        type: "step_error",
        step: index,
        context: step.context,
        op: step.op,
        message: clip(error.message),
      });
      break;
    }
  }
  currentStep = null;
  await closeBrowser();
  clearTimeout(globalTimer);
  emit({ type: "done" });
}

main().then(
  () => process.exit(0),
  async (error) => {
    await finish(timedOut ? 2 : 1, error instanceof HarnessError ? error.message : error.stack);
  },
);
