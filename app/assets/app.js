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

// A running workflow's timeline follows new events as they happen (Server-Sent Events); the page
// reloads once the workflow has finished, to show its status and output.
const timeline = document.querySelector('[data-follow]');
if (timeline && window.EventSource) {
  const source = new EventSource(timeline.getAttribute('data-follow'));
  source.addEventListener('append', (message) => {
    const e = JSON.parse(message.data);
    const item = document.createElement('li');
    const head = document.createElement('div');
    head.className = 'ev-head';
    const seq = document.createElement('span');
    seq.className = 'seq';
    seq.textContent = `#${e.sequence}`;
    const type = document.createElement('strong');
    type.className = 'ev-type';
    type.textContent = e.type;
    const time = document.createElement('time');
    time.textContent = e.time;
    head.append(seq, ' ', type, ' ', time);
    item.append(head);
    if (e.payload) {
      const details = document.createElement('details');
      const summary = document.createElement('summary');
      summary.textContent = 'payload';
      const pre = document.createElement('pre');
      pre.className = 'json';
      pre.textContent = e.payload;
      details.append(summary, pre);
      item.append(details);
    }
    timeline.append(item);
  });
  source.addEventListener('end', () => {
    source.close();
    window.location.reload();
  });
}
