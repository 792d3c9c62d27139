// `npm start`: the node of src/main.ts, compiled (dist/main.js) when the build is current, else
// through tsx (bin/entry.js).
import { importEntry } from "./entry.js"

await importEntry("main")
