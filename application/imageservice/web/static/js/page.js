/* Every page: the workspace countdown, local times, the notice a previous page left. This is an
   entry module (base.html loads it); modules run once, however many import them. */

import { showLeftNotice } from "./dom.js";
import { formatLocalTime } from "./words.js";
import { startCountdown } from "./workspace.js";

function localizeTimes() {
  document.querySelectorAll("time.local-time").forEach((node) => {
    const iso = node.getAttribute("datetime");
    if (iso) node.textContent = formatLocalTime(iso);
  });
}

startCountdown();
localizeTimes();
showLeftNotice();
