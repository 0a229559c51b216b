// Picking a client on a create form suggests its contacts as recipients: the
// client's <option> carries them in data-contacts (JSON, [{name, email}]);
// each becomes a button that fills the recipient fields of the form (the send
// page's name/e-mail rows, the share page's comma list, the request page's
// customer). Without script, #contact-list still completes e-mail fields.
(() => {
  const select = document.getElementById("client");
  const box = document.getElementById("contact-suggest");
  if (!select || !box) return;

  const add = (c) => {
    const rows = document.getElementById("recipients");
    if (rows) {
      const empty = (r) => !r.querySelector("input[type=email]").value;
      let row = Array.from(rows.querySelectorAll(".recipient")).find(empty);
      if (!row) {
        document.getElementById("add-recipient").click();
        row = Array.from(rows.querySelectorAll(".recipient")).pop();
      }
      const [name, email] = row.querySelectorAll("input");
      name.value = c.name;
      email.value = c.email;
      return;
    }
    const to = document.getElementById("to");
    if (!to) return;
    if (to.type === "email") {
      to.value = c.email;
      const customer = document.getElementById("customer");
      if (customer && !customer.value) customer.value = c.name;
      return;
    }
    const have = to.value.split(",").map((s) => s.trim()).filter(Boolean);
    if (!have.includes(c.email)) have.push(c.email);
    to.value = have.join(", ");
  };

  const show = () => {
    box.textContent = "";
    const opt = select.selectedOptions[0];
    let list = [];
    try {
      list = JSON.parse((opt && opt.dataset.contacts) || "[]");
    } catch (_) {
      list = [];
    }
    if (!list.length) return;
    const p = document.createElement("p");
    p.className = "muted small";
    p.textContent = "Contacts of " + opt.textContent + " (click to add as a recipient):";
    box.append(p);
    for (const c of list) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "contact";
      b.dataset.email = c.email;
      b.textContent = "+ " + (c.name ? c.name + " <" + c.email + ">" : c.email);
      b.addEventListener("click", () => {
        add(c);
        b.disabled = true;
      });
      box.append(b);
    }
  };
  select.addEventListener("change", show);
  show();
})();
