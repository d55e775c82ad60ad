/** The `spaces` command line's help text and its usage error. */

export const USAGE = `spaces — command line for Spaces files (*.space)

Usage:
  spaces create FILE [--name NAME]                      → {"spaceId","file"}
  spaces info FILE                                      → {"spaceId","name","appTrees":[…],"opCount"}
  spaces app add FILE --app APPID --name NAME           → {"treeId"}
  spaces app rename FILE --tree ID --name NAME
  spaces app delete FILE --tree ID
  spaces item add FILE --tree ID [--parent VID] [--after VID | --before VID] [--set key=value]…  → {"id"}
  spaces item set FILE --tree ID --id VID [--set key=value]… [--unset key]…
  spaces item move FILE --tree ID --id VID --parent VID [--after VID | --before VID]
  spaces item delete FILE --tree ID --id VID
  spaces dump FILE [--tree ID]                          → {id, props, children:[…]}
  spaces import FILE --tree ID [--parent VID]           (nested JSON tree on stdin, ids optional)
  spaces secret set FILE KEY                            (value on stdin)
  spaces secret get FILE KEY | list FILE | delete FILE KEY
  spaces sync FILE --server URL [--token T] [--space ID] [--timeout S] [--watch]
                                                        → {"spaceId","file","received","sent","seq"}

Values given with --set are parsed as JSON when they are valid JSON, else kept as strings.
Output is JSON on stdout; errors go to stderr with exit code 1 (2 for usage errors).
sync: syncs FILE with a team server once (catch-up stored, local edits acknowledged) and exits;
a space the server lacks is created there (a token with write access to '*' is needed). When FILE
does not exist, server space --space ID is cloned into it (FILE appears only once complete). The
token comes from --token or $SPACES_TOKEN. Exit 1 when the server refuses the token, the space or
writes, FILE cannot be written, or the server cannot be reached within --timeout seconds (30).
--watch keeps syncing until SIGINT/SIGTERM, printing a JSON line per sync event.
Secrets are encrypted in the file with a key from $SPACES_KEY (64 hex digits), else from the
key file $SPACES_KEY_FILE or ~/.config/spaces/file.key (created with mode 0600 when missing).
`;

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
