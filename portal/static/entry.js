// 人工录入: add and remove record blocks, and check what is typed with the platform's own rules
// (POST to the form's check URL, which runs the same rules as batch validation) as the clerk types.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("entry-form");
  if (!form) return;
  const records = document.getElementById("records");
  const status = document.getElementById("check-status");
  const csrf = form.querySelector("input[name=csrf_token]").value;
  const maxRecords = Number(form.dataset.maxRecords);
  let timer = null;
  let sequence = 0;

  const blocks = () => Array.from(records.querySelectorAll("fieldset.record"));

  const valueOf = (input) => {
    if (input.multiple) {
      const chosen = Array.from(input.selectedOptions).map((option) => option.value);
      return chosen.join(input.dataset.separator || ";");
    }
    return input.value;
  };

  const collect = () => blocks().map((block) => {
    const record = {};
    block.querySelectorAll("[data-field]").forEach((input) => {
      if (input.matches("input, select")) record[input.dataset.field] = valueOf(input);
    });
    return record;
  });

  const show = (problems) => {
    blocks().forEach((block, index) => {
      const found = problems[index] || {};
      block.querySelectorAll("div.field").forEach((field) => {
        const name = field.dataset.field;
        const typed = field.querySelector("input, select");
        const reasons = found[name] || [];
        // A required field left blank is only flagged once the clerk has been there.
        const shown = typed && typed.dataset.touched ? reasons : reasons.filter((r) => !r.includes("必填"));
        field.classList.toggle("invalid", shown.length > 0);
        if (typed) typed.setAttribute("aria-invalid", shown.length > 0 ? "true" : "false");
        field.querySelector(".problem").textContent = shown.join("；");
      });
    });
  };

  const check = async () => {
    const mine = ++sequence;
    status.textContent = "正在校验…";
    try {
      const response = await fetch(form.dataset.checkUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
        body: JSON.stringify({records: collect()}),
      });
      if (mine !== sequence) return;  // a newer check is on its way
      if (!response.ok) {
        status.textContent = response.status === 403 || response.redirected ? "登录已过期，请刷新页面后重新登录" : "暂时无法校验";
        return;
      }
      const result = await response.json();
      show(result.problems);
      const count = result.problems.filter((p) => Object.keys(p).length > 0).length;
      status.textContent = count ? `有${count}条记录需要修改` : "已校验，未发现问题";
    } catch (error) {
      status.textContent = "暂时无法校验（网络异常）";
    }
  };

  const schedule = (event) => {
    if (event && event.target && event.target.dataset) event.target.dataset.touched = "1";
    clearTimeout(timer);
    timer = setTimeout(check, 350);
  };

  const renumber = () => {
    blocks().forEach((block, index) => {
      block.dataset.index = index;
      block.querySelector(".record-no").textContent = index + 1;
      block.querySelectorAll("[name], [id], label[for]").forEach((element) => {
        for (const attribute of ["name", "id", "for"]) {
          const value = element.getAttribute(attribute);
          if (value && /^r\d+__/.test(value)) element.setAttribute(attribute, value.replace(/^r\d+__/, `r${index}__`));
        }
      });
    });
  };

  document.getElementById("add-record").addEventListener("click", () => {
    const all = blocks();
    if (all.length >= maxRecords) {
      status.textContent = `一次最多录入${maxRecords}条记录`;
      return;
    }
    const copy = all[all.length - 1].cloneNode(true);
    copy.querySelectorAll("input").forEach((input) => { input.value = ""; delete input.dataset.touched; });
    copy.querySelectorAll("select").forEach((select) => {
      Array.from(select.options).forEach((option) => { option.selected = false; });
      delete select.dataset.touched;
    });
    copy.querySelectorAll(".problem").forEach((p) => { p.textContent = ""; });
    copy.querySelectorAll(".field").forEach((f) => f.classList.remove("invalid"));
    records.appendChild(copy);
    renumber();
  });

  records.addEventListener("click", (event) => {
    if (!event.target.classList.contains("remove-record")) return;
    if (blocks().length > 1) {
      event.target.closest("fieldset.record").remove();
      renumber();
      schedule();
    }
  });

  records.addEventListener("input", schedule);
  records.addEventListener("change", schedule);
  form.addEventListener("submit", () => {
    // The server checks again and saves once: a second click finds the batch already saved.
    document.getElementById("save-entry").textContent = "正在保存…";
  });
});
