// Copy buttons: <button data-copy="ID"> copies the text of the element with that
// id (or the value of an input). Loaded as a file: the pages allow no inline script.
document.addEventListener("click", (ev) => {
  const button = ev.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  const text = "value" in source ? source.value : source.textContent;
  const done = (label) => {
    const was = button.textContent;
    button.textContent = label;
    setTimeout(() => { button.textContent = was; }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(() => done("Copied"), () => done("Copy failed"));
  } else {
    // Plain http (not a secure context): select the text so Ctrl+C works.
    if (source.select) source.select();
    else window.getSelection().selectAllChildren(source);
    done(document.execCommand && document.execCommand("copy") ? "Copied" : "Press Ctrl+C");
  }
});
