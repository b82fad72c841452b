/** Chromium from Debian (`apt-get install chromium`; .ci/run installs it when missing). */
export const CHROMIUM_PATH = "/usr/bin/chromium";

/**
 * Flags for a quiet, headless, sandbox-free Chromium in a container: no
 * background traffic, no component updates, no sync, no QUIC. playwright-core
 * starts each browser with a new, empty profile (user data) directory.
 */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-sync",
  "--disable-quic",
];
