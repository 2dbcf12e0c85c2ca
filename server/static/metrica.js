// Yandex Metrica, loaded only on pages of visitors who chose "Accept all" (the server includes
// this file only then, and only then allows Metrica's hosts in the Content-Security-Policy).
(function () {
  "use strict";
  var script = document.currentScript;
  var id = Number(script && script.getAttribute("data-counter"));
  if (!id) return;
  window.ym = window.ym || function () { (window.ym.a = window.ym.a || []).push(arguments); };
  window.ym.l = Date.now();
  var tag = document.createElement("script");
  tag.async = true;
  tag.src = "https://mc.yandex.ru/metrika/tag.js";
  document.head.appendChild(tag);
  window.ym(id, "init", { clickmap: true, trackLinks: true, accurateTrackBounce: true });
})();
