// A confirmation in the page (a <dialog>, not window.confirm), answered true or false.

export function confirmAction(text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

// Run an action after a confirmation; report its outcome in the flash line, then call done().
export async function confirmed(text, action, flash, done) {
  if (!(await confirmAction(text))) return;
  try {
    const message = await action();
    flash(message || "Done.", "ok");
  } catch (error) {
    flash(error.message, "error");
  }
  if (done) await done();
}
