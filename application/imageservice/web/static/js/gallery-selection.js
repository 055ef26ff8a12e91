/* Choosing gallery images for a batch: a checkbox on each tile, shift-click for a range, "select
   all shown", and the bar that says how many are chosen. */

/** The selection of the grid; ``onChange(ids)`` hears every change. */
export function createSelection(grid, onChange) {
  const chosen = new Set();
  let anchor = null;   // the last checkbox clicked without shift: a range starts there

  function boxes() {
    return Array.from(grid.querySelectorAll("input.tile-select"));
  }

  function set(box, on) {
    box.checked = on;
    if (on) chosen.add(box.value); else chosen.delete(box.value);
    box.closest(".grid-item").classList.toggle("is-selected", on);
  }

  function changed() {
    onChange(Array.from(chosen));
  }

  grid.addEventListener("click", function (event) {
    const box = event.target.closest("input.tile-select");
    if (!box) return;
    if (event.shiftKey && anchor && anchor !== box && anchor.isConnected) {
      const all = boxes(), from = all.indexOf(anchor), to = all.indexOf(box);
      all.slice(Math.min(from, to), Math.max(from, to) + 1).forEach((each) => set(each, box.checked));
    } else {
      set(box, box.checked);
    }
    anchor = box;
    changed();
  });

  return {
    has: (imageId) => chosen.has(imageId),
    ids: () => Array.from(chosen),
    selectAllShown() {
      boxes().forEach((box) => set(box, true));
      changed();
    },
    clear() {
      boxes().forEach((box) => set(box, false));
      chosen.clear();
      changed();
    },
    /** Forget images that left the gallery. */
    drop(imageIds) {
      imageIds.forEach((id) => chosen.delete(id));
      changed();
    }
  };
}
