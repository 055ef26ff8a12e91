/* The uploads waiting their turn: at most ``parallel`` are sent at once, the rest in the order
   they were chosen; one cancelled while it waited is skipped. */

/** A queue handing each upload still "queued" to ``send`` (which returns a promise). */
export function createQueue(parallel, send) {
  const waiting = [];
  let running = 0;

  function startNext() {
    while (running < parallel && waiting.length) {
      const upload = waiting.shift();
      if (upload.state !== "queued") continue;
      running += 1;
      send(upload).then(finished, finished);
    }
  }

  function finished() {
    running -= 1;
    startNext();
  }

  return {
    /** Queue ``uploads`` and start as many as there is room for. */
    add(uploads) {
      waiting.push(...uploads);
      startNext();
    }
  };
}
