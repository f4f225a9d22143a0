/**
 * What the service answers (`data` of the envelope), as docs/api.md documents it. Field names are
 * the service's own (snake_case), so the reference applies as is; answers may carry more fields.
 */
export {};
