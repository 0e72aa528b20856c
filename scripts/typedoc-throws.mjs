// typedoc plugin: `@throws {SomeError} text` (JSDoc's form, used throughout
// src/) renders as a link to SomeError followed by the text. typedoc keeps the
// braces as a type annotation (typedoc.json's preservedTypeAnnotationTags)
// but would show it as plain text; this turns it into an {@link} before
// typedoc resolves links (after the comments of signatures are in place).
import { Converter } from 'typedoc';

/** @param {import('typedoc').Application} app */
export function load(app) {
  app.converter.on(Converter.EVENT_RESOLVE_END, (context) => {
    const main = context.project.children?.find((m) => m.name === 'vdisk');
    for (const reflection of Object.values(context.project.reflections)) {
      const comments = [reflection.comment, ...(reflection.signatures ?? []).map((s) => s.comment)];
      for (const comment of comments) {
        for (const tag of comment?.blockTags ?? []) {
          const name = tag.tag === '@throws' ? /^\{([A-Za-z_$][\w$.]*)\}$/.exec(tag.typeAnnotation ?? '')?.[1] : undefined;
          if (!name) continue;
          delete tag.typeAnnotation;
          const rest = tag.content[0]?.kind === 'text' && !/^\s/.test(tag.content[0].text) ? ' ' : '';
          // Errors live in the main entry: name it, so a link from vdisk/driver's pages resolves too.
          const target = main?.getChildByName(name) ? `vdisk!${name} | ${name}` : name;
          tag.content.unshift({ kind: 'inline-tag', tag: '@link', text: target }, ...(rest ? [{ kind: 'text', text: rest }] : []));
        }
      }
    }
  }, 100);
}
