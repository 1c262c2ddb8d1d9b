// The portal's shared script: no framework, no request to anywhere but the portal itself.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Upload: refuse a file over the cap before sending it (the server refuses it too).
  const form = document.getElementById("upload-form");
  if (form) {
    const input = document.getElementById("file");
    const message = document.getElementById("size-error");
    const maxBytes = Number(form.dataset.maxBytes);
    const check = () => {
      const file = input.files && input.files[0];
      const tooLarge = file && file.size > maxBytes;
      message.hidden = !tooLarge;
      message.textContent = tooLarge
        ? `文件超过上传大小上限（${form.dataset.maxMb} MB），请删除多余的工作表、图片或空行，或分成几个文件分别上传`
        : "";
      return !tooLarge;
    };
    input.addEventListener("change", check);
    form.addEventListener("submit", (event) => {
      if (!check()) {
        event.preventDefault();
        return;
      }
      const button = document.getElementById("upload-button");
      button.disabled = true;
      button.textContent = "正在上传并校验…";
    });
  }
});
