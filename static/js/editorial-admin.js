// A dropdown changelist filter goes to the chosen option's query string.
document.querySelectorAll("select.dropdown-filter").forEach((select) => {
  if (select.dataset.bound) return;
  select.dataset.bound = "1";
  select.addEventListener("change", () => {
    window.location.search = select.value;
  });
});
