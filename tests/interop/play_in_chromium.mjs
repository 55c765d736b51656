// Plays a page's <video> in Debian's headless Chromium and reports what happened.
//
// Usage: node play_in_chromium.mjs PAGE_URL [TIMEOUT_MS]
// The page (written by tests/interop.rs) sets window.result on `ended` or `error`.
// Prints that result as JSON; exits 0 only if the video ended without an error.
import { chromium } from "playwright-core";

const [url, timeoutMs = "30000"] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  // No network here: keep Chromium from reaching for it. No GPU, no sandbox (CI runs as root).
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
  ],
});
let result;
try {
  const page = await browser.newPage();
  page.on("console", (msg) => console.error(`page: ${msg.text()}`));
  await page.goto(url);
  const handle = await page.waitForFunction(() => window.result, null, {
    timeout: Number(timeoutMs),
    polling: 100,
  });
  result = await handle.jsonValue();
} catch (e) {
  result = { ended: false, error: `driver: ${e.message.split("\n")[0]}` };
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
process.exit(result.ended && !result.error ? 0 : 1);
