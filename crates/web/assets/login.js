// Signs in without leaving the page on a refusal, so that the reason is shown.
"use strict";
document.getElementById("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const error = document.getElementById("error");
  error.hidden = true;
  const body = new URLSearchParams(new FormData(e.target));
  const r = await fetch("/login", { method: "POST", body, credentials: "same-origin" });
  if (r.ok) {
    window.location.assign("/");
  } else {
    error.textContent = await r.text();
    error.hidden = false;
  }
});
