/* The gallery page: the grid and the uploader, wired to each other. */

import { createGallery } from "./gallery.js";
import { createUploader } from "./upload.js";

createUploader(createGallery());
