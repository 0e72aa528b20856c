/** The package version (kept in step with package.json by scripts/postbuild.mjs checks). */
export const VERSION = '0.1.0';
