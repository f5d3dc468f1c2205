// The browser half of scripts/browser-check.sh (which sets every BC_* variable): /docs in
// headless Chromium through playwright-core. Prints each check; exits 1 if any failed.
import { createRequire } from "node:module";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run scripts/browser-check.sh)`);
  return v;
};
const base = env("BC_BASE");
const key = env("BC_KEY");
const slug = env("BC_ORG_SLUG");
const out = env("BC_OUT");
const selfTest = process.env.BC_SELF_TEST || "";
const { chromium } = createRequire(`${env("BC_PLAYWRIGHT")}/`)("./index.js");

const failures = [];
const check = (ok, what, detail = "") => {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}${detail ? `: ${detail}` : ""}`);
  if (!ok) failures.push(what);
};

const spec = await (await fetch(`${base}/openapi.json`)).json();
const methods = new Set(["get", "put", "post", "delete", "patch", "head", "options", "trace"]);
const operations = Object.values(spec.paths).flatMap((ops) =>
  Object.keys(ops).filter((m) => methods.has(m)),
).length;
const tags = spec.tags.map((t) => t.name);

const browser = await chromium.launch({
  executablePath: env("BC_CHROMIUM"),
  headless: true,
  // No name resolves: the page can reach the server's address and nothing else.
  args: ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--no-first-run"],
});
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  const consoleErrors = [];
  const offsite = [];
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
  page.on("pageerror", (e) => consoleErrors.push(`uncaught: ${e.message}`));
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (new URL(url).origin === base) return route.continue();
    offsite.push(url);
    return route.abort("blockedbyclient");
  });
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`),
    );
  });

  const resp = await page.goto(`${base}/docs`, { waitUntil: "load" });
  check(resp.status() === 200, "GET /docs answers 200", String(resp.status()));
  const encoding = (await resp.allHeaders())["content-encoding"];
  check(encoding === "gzip", "the page arrives gzipped", String(encoding));
  const csp = (await resp.allHeaders())["content-security-policy"] || "";
  check(csp.includes("script-src 'sha256-"), "the page has its strict CSP", csp.slice(0, 60));

  // Every operation of the spec renders, under the spec's tags, in the spec's order.
  const opSelector = selfTest === "selector" ? ".opblock-no-such-class" : ".opblock";
  let rendered = 0;
  for (let i = 0; i < 150 && rendered !== operations; i++) {
    rendered = await page.locator(opSelector).count();
    if (rendered !== operations) await page.waitForTimeout(200);
  }
  check(rendered === operations, "every operation renders", `${rendered} of ${operations}`);
  const shownTags = await page
    .locator("h3.opblock-tag")
    .evaluateAll((hs) => hs.map((h) => h.getAttribute("data-tag")));
  check(
    JSON.stringify(shownTags) === JSON.stringify(tags),
    "tags in the spec's order, jobs first, compat last",
    shownTags.join(", "),
  );
  const title = await page.title();
  check(title === "Velu API", "the page's title", title);

  if (selfTest === "csp") {
    // An inline script the CSP does not list: the check below must catch it.
    await page.addScriptTag({ content: "window.__selfTest = 1;" }).catch(() => {});
    await page.waitForTimeout(200);
  }

  // Authorize with the key, then try whoami.
  await page.locator("button.btn.authorize").first().click();
  const scheme = page.locator(".modal-ux .auth-container").first();
  await scheme.locator("input").first().fill(key);
  await scheme.locator("button.authorize").click();
  await page.locator(".modal-ux button.btn-done").first().click();
  const op = page.locator(".opblock", {
    has: page.locator('.opblock-summary-path[data-path="/v1/whoami"]'),
  });
  await op.locator(".opblock-summary").first().click();
  await op.locator("button.try-out__btn").click();
  await op.locator("button.execute").click();
  const status = op.locator(".live-responses-table .response .response-col_status").first();
  await status.waitFor({ timeout: 20000 });
  const code = (await status.innerText()).trim();
  check(code.startsWith("200"), '"Try it out" on whoami answers 200', code);
  const body = await op
    .locator(".live-responses-table .response .response-col_description")
    .first()
    .innerText();
  check(body.includes(slug), "the answer is the key's org", body.slice(0, 80).replace(/\s+/g, " "));
  const curl = await op.locator(".curl-command .curl").first().innerText().catch(() => "");
  check(
    curl.includes(`${base}/v1/whoami`) && curl.includes("X-API-Key"),
    "the request went to this server with the key",
    curl.split("\n").slice(0, 2).join(" ").replace(/\s+/g, " "),
  );

  await op.scrollIntoViewIfNeeded();
  await page.screenshot({ path: `${out}/docs.png` });

  const violations = await page.evaluate(() => window.__csp);
  check(violations.length === 0, "no CSP violation", violations.join("; "));
  check(consoleErrors.length === 0, "no console error", consoleErrors.join(" | "));
  check(offsite.length === 0, "no request leaves the server", offsite.join(", "));
} catch (e) {
  check(false, "the walk through the page", e.message.split("\n")[0]);
  if (page) await page.screenshot({ path: `${out}/docs.png` }).catch(() => {});
} finally {
  await browser.close();
}

if (failures.length) {
  console.log(`browser check: ${failures.length} check(s) failed: ${failures.join("; ")}`);
  process.exit(1);
}
console.log("browser check: every check passed");
