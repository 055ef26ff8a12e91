/* Choosing and dropping files: the button, the file input, and the drop zone (a file dropped
   beside the zone must not make the browser navigate away to it). */

function carriesFiles(event) {
  const types = event.dataTransfer && event.dataTransfer.types;
  return types && Array.prototype.indexOf.call(types, "Files") >= 0;
}

/** Hand every chosen or dropped set of files to ``addFiles``. */
export function startDropzone(zone, input, chooser, addFiles) {
  chooser.addEventListener("click", function () { input.click(); });
  input.addEventListener("change", function () {
    if (input.files && input.files.length) addFiles(input.files);
    input.value = "";
  });

  let depth = 0;
  zone.addEventListener("dragenter", function (event) {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    depth += 1;
    zone.classList.add("is-dragover");
  });
  zone.addEventListener("dragover", function (event) {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  zone.addEventListener("dragleave", function () {
    depth = Math.max(0, depth - 1);
    if (!depth) zone.classList.remove("is-dragover");
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    depth = 0;
    zone.classList.remove("is-dragover");
    if (event.dataTransfer && event.dataTransfer.files.length) addFiles(event.dataTransfer.files);
  });
  window.addEventListener("dragover", function (event) { if (carriesFiles(event)) event.preventDefault(); });
  window.addEventListener("drop", function (event) { if (carriesFiles(event)) event.preventDefault(); });
}
