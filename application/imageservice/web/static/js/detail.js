/* The image page: one module per card (preview and live status, downloads, share, convert & resize,
   tags and description, delete), each started with what the page says about the image. */

import { imagePath } from "./api.js";
import { startAbout } from "./detail-about.js";
import { startConvert } from "./detail-convert.js";
import { startDelete } from "./detail-delete.js";
import { startDownloads } from "./detail-downloads.js";
import { startPreview } from "./detail-preview.js";
import { startShare } from "./detail-share.js";

const root = document.getElementById("detail");
if (root) {
  const page = { root, imageId: root.dataset.imageId, filename: root.dataset.filename,
                 path: imagePath(root.dataset.imageId) };
  [startPreview, startDownloads, startShare, startConvert, startAbout, startDelete].forEach((start) => start(page));
}
