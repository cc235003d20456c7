// Small enhancements; every page works without them.
document.addEventListener('click', (event) => {
  const confirmer = event.target.closest('[data-confirm]');
  if (confirmer && !window.confirm(confirmer.getAttribute('data-confirm'))) {
    event.preventDefault();
    return;
  }
  const copier = event.target.closest('[data-copy]');
  if (copier) {
    const source = document.getElementById(copier.getAttribute('data-copy'));
    if (source && navigator.clipboard) {
      navigator.clipboard.writeText(source.textContent).then(() => { copier.textContent = 'Copied'; });
    }
  }
});
