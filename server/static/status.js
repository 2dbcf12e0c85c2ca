// Live status on the dashboard and the job page: poll the JSON endpoint while a job is active;
// when one finishes, reload so its clips (or its error) appear.
(function () {
  "use strict";
  var INTERVAL = 2000;
  var numbers = new Intl.NumberFormat(document.documentElement.lang || "en");

  function show(element, job) {
    element.className = element.className.replace(/\bstatus-\w+/, "status-" + job.status);
    var label = element.querySelector(".status-label");
    var bar = element.querySelector("progress");
    var percent = element.querySelector(".percent");
    if (label) label.textContent = job.label;
    if (bar) { bar.value = job.progress; bar.hidden = !job.active; }
    if (percent) { percent.textContent = numbers.format(job.progress) + "%"; percent.hidden = !job.active; }
  }

  function poll(url, update) {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (data && update(data)) window.setTimeout(function () { poll(url, update); }, INTERVAL);
      })
      .catch(function () { window.setTimeout(function () { poll(url, update); }, INTERVAL * 3); });
  }

  var list = document.getElementById("jobs");
  if (list && list.querySelector('[data-active="true"]')) {
    poll(list.dataset.statusUrl, function (data) {
      var again = false;
      data.jobs.forEach(function (job) {
        var row = list.querySelector('[data-job-id="' + job.id + '"]');
        if (!row) return;
        if (row.dataset.active === "true" && !job.active) { window.location.reload(); return; }
        show(row, job);
        if (job.active) again = true;
      });
      return again;
    });
  }

  var live = document.getElementById("job-live");
  if (live && live.dataset.active === "true") {
    poll(live.dataset.statusUrl, function (job) {
      if (!job.active) { window.location.reload(); return false; }
      show(live, job);
      return true;
    });
  }
})();
