# What the NixOS module derives from `services.secretfs`, written with builtins only so that it
# can be evaluated (and tested) without nixpkgs: the manifest's TOML text, the problems that
# `secretfs check` would refuse, the units to restart or reload per secret and template, and
# the extra symbolic links.
#
# Every function takes `settings`, shaped like the module's options:
#   { mountPoint, stateDir, keepGenerations, identityPaths, auditLog, maxSecretSize,
#     onepassword = { tokenFile, op, refresh, timeout, retry };
#     secrets = { <name> = { file, source, owner, group, mode, path, restartUnits, reloadUnits,
#                            neededForUsers }; };
#     templates = { <name> = { content, file, owner, group, mode, path, restartUnits,
#                              reloadUnits }; }; }
# Attributes a secret or template lacks take the module's defaults; `templates` and
# `onepassword` may be left out. `onepassword.op` is the CLI's absolute path; it is read only
# when `tokenFile` is set, so that the (unfree) package is not evaluated on hosts that do not
# use 1Password.
let
  # Decrypted during activation, before users exist, so that `hashedPasswordFile` can name it.
  forUsersDir = "/run/secrets-for-users";

  secretDefaults = {
    file = null;
    source = null;
    owner = "root";
    group = null;
    mode = "0400";
    path = null;
    restartUnits = [ ];
    reloadUnits = [ ];
    neededForUsers = false;
  };

  templateDefaults = {
    content = null;
    file = null;
    owner = "root";
    group = null;
    mode = "0400";
    path = null;
    restartUnits = [ ];
    reloadUnits = [ ];
  };

  onepasswordDefaults = {
    tokenFile = null;
    op = "op";
    refresh = "1h";
    timeout = "30s";
    retry = "1m";
  };

  # NixOS needs at least 2 (the current generation and the one before it are never pruned).
  minKeepGenerations = 2;
  maxSegmentBytes = 255;

  # ---- small list and string helpers that nixpkgs' lib would otherwise give --------------

  all = builtins.all;
  any = builtins.any;
  concatMap = builtins.concatMap;
  filter = builtins.filter;
  length = builtins.length;
  names = builtins.attrNames;

  concatLines = lines: builtins.concatStringsSep "\n" lines + "\n";
  range = count: builtins.genList (i: i) count;
  startsWith = prefix: text: builtins.substring 0 (builtins.stringLength prefix) text == prefix;
  endsWith =
    suffix: text:
    let
      start = builtins.stringLength text - builtins.stringLength suffix;
    in
    start >= 0 && builtins.substring start (builtins.stringLength suffix) text == suffix;
  splitOn = separator: text: filter builtins.isString (builtins.split separator text);
  unique = list: builtins.attrNames (builtins.listToAttrs (map (x: {
    name = x;
    value = true;
  }) list));

  # A character from its code point; Nix strings have no `\x` escape, JSON has `\u`.
  charOf =
    code:
    let
      hex = "0123456789abcdef";
      digit = n: builtins.substring n 1 hex;
      byte = n: digit (n / 16) + digit (n - n / 16 * 16);
    in
    builtins.fromJSON ''"\u00${byte code}"'';

  # C0 controls and DEL are single bytes; C1 controls (U+0080 to U+009F) two bytes in UTF-8.
  singleByteControls = builtins.listToAttrs (
    map (code: {
      name = charOf code;
      value = code;
    }) (range 32 ++ [ 127 ])
  );
  twoByteControls = builtins.listToAttrs (
    map (code: {
      name = charOf code;
      value = code;
    }) (builtins.genList (i: 128 + i) 32)
  );
  delete = charOf 127;

  hasControl =
    text:
    any (
      i:
      singleByteControls ? ${builtins.substring i 1 text}
      || twoByteControls ? ${builtins.substring i 2 text}
    ) (range (builtins.stringLength text));

  # The bidirectional embeddings, overrides (U+202A to U+202E) and isolates (U+2066 to U+2069),
  # three bytes each in UTF-8: they reorder the text after them, so a name could show as another.
  bidiControls = builtins.listToAttrs (
    map (code: {
      name = builtins.fromJSON ''"\u${code}"'';
      value = code;
    }) [
      "202a"
      "202b"
      "202c"
      "202d"
      "202e"
      "2066"
      "2067"
      "2068"
      "2069"
    ]
  );

  hasBidiControl =
    text:
    any (i: bidiControls ? ${builtins.substring i 3 text}) (range (builtins.stringLength text));

  # ---- TOML --------------------------------------------------------------------------------

  # A JSON string is a TOML basic string, except that TOML also wants DEL escaped.
  tomlString = text: builtins.replaceStrings [ delete ] [ "\\u007f" ] (builtins.toJSON text);
  tomlValue = value: if builtins.isInt value then toString value else tomlString value;

  optionalKey = key: value: if value == null then [ ] else [ "${key} = ${tomlValue value}" ];

  # A path literal is copied into the store (ciphertexts are safe there); a string is kept.
  pathText = file: if builtins.isPath file then "${file}" else toString file;

  withDefaults = secrets: builtins.mapAttrs (_: secret: secretDefaults // secret) secrets;

  templatesOf =
    settings:
    builtins.mapAttrs (_: entry: templateDefaults // entry) (settings.templates or { });

  servedSecrets =
    settings:
    let
      secrets = withDefaults settings.secrets;
    in
    builtins.removeAttrs secrets (filter (name: secrets.${name}.neededForUsers) (names secrets));

  forUsersSecrets =
    settings:
    let
      secrets = withDefaults settings.secrets;
    in
    builtins.removeAttrs secrets (filter (name: !secrets.${name}.neededForUsers) (names secrets));

  # The services the daemon restarts or reloads when a refresh from 1Password changes what a
  # secret or template serves. Changes made by a switch are the activation unit's to handle,
  # from the units JSON below; both name services the same way (`serviceName`).
  unitLines =
    entry:
    let
      quoted = unit: tomlString (serviceName unit);
      line =
        key: units:
        if units == [ ] then
          [ ]
        else
          [ "${key} = [${builtins.concatStringsSep ", " (map quoted units)}]" ];
    in
    line "restart_units" entry.restartUnits ++ line "reload_units" entry.reloadUnits;

  # A secret has an age `file`, a 1Password `source`, or both (then the file is served and the
  # source is only where `secretfs sync` reads the value).
  secretTable =
    name: secret:
    [
      ""
      "[secrets.${tomlString name}]"
    ]
    ++ (if secret.file == null then [ ] else [ "file = ${tomlString (pathText secret.file)}" ])
    ++ optionalKey "source" secret.source
    ++ [ "owner = ${tomlValue secret.owner}" ]
    ++ (if secret.group == null then [ ] else [ "group = ${tomlValue secret.group}" ])
    ++ [ "mode = ${tomlString secret.mode}" ]
    ++ unitLines secret;

  # The text itself, or a file holding it (copied into the store like an age file: a template
  # holds placeholders, not secrets).
  templateTable =
    name: entry:
    [
      ""
      "[templates.${tomlString name}]"
    ]
    ++ optionalKey "content" entry.content
    ++ (if entry.file == null then [ ] else [ "file = ${tomlString (pathText entry.file)}" ])
    ++ [ "owner = ${tomlValue entry.owner}" ]
    ++ (if entry.group == null then [ ] else [ "group = ${tomlValue entry.group}" ])
    ++ [ "mode = ${tomlString entry.mode}" ]
    ++ unitLines entry;

  onepasswordOf = settings: onepasswordDefaults // (settings.onepassword or { });

  # Written only with a token file: without one the daemon never runs `op`, and leaving `op` out
  # keeps the CLI's package out of the system.
  onepasswordTable =
    settings:
    let
      onepassword = onepasswordOf settings;
    in
    if onepassword.tokenFile == null then
      [ ]
    else
      [
        ""
        "[onepassword]"
        "token_file = ${tomlString onepassword.tokenFile}"
        "op = ${tomlString onepassword.op}"
        "refresh = ${tomlString onepassword.refresh}"
        "timeout = ${tomlString onepassword.timeout}"
        "retry = ${tomlString onepassword.retry}"
      ];

  toml =
    settings:
    let
      secrets = servedSecrets settings;
      templates = templatesOf settings;
      identities = map (path: tomlString (toString path)) settings.identityPaths;
    in
    concatLines (
      [
        "# Written by the secretfs NixOS module from services.secretfs."
        "mount_point = ${tomlString settings.mountPoint}"
        "state_dir = ${tomlString settings.stateDir}"
        "keep_generations = ${toString settings.keepGenerations}"
      ]
      # Optional keys are written only when set, so that secretfs's own defaults apply.
      ++ optionalKey "audit_log" (settings.auditLog or null)
      ++ optionalKey "max_secret_size" (settings.maxSecretSize or null)
      ++ [ "identities = [${builtins.concatStringsSep ", " identities}]" ]
      ++ onepasswordTable settings
      ++ concatMap (name: secretTable name secrets.${name}) (names secrets)
      ++ concatMap (name: templateTable name templates.${name}) (names templates)
    );

  # ---- where secrets and templates appear, and the extra links -----------------------------

  servedPath =
    settings: name: secret:
    (if secret.neededForUsers or false then forUsersDir else settings.mountPoint) + "/" + name;

  # Every secret and template as { name, entry }. A list, not one attribute set: a name in both
  # is a problem, but until evaluation stops on it neither entry may hide the other.
  entriesOf =
    settings:
    let
      listOf = entries: map (name: {
        inherit name;
        entry = entries.${name};
      }) (names entries);
    in
    listOf (withDefaults settings.secrets) ++ listOf (templatesOf settings);

  # `path` is where consumers read the secret; a link is needed only when it differs.
  links =
    settings:
    let
      linked = filter (
        { name, entry }: entry.path != null && entry.path != servedPath settings name entry
      ) (entriesOf settings);
    in
    map (
      { name, entry }:
      {
        inherit name;
        path = entry.path;
        target = servedPath settings name entry;
      }
    ) linked;

  # One line per link, "path<TAB>target", for the activation script.
  linksText = settings: concatLines (map (link: "${link.path}\t${link.target}") (links settings));

  # One line per neededForUsers secret, "name<TAB>file<TAB>mode", for the script that decrypts
  # them during activation.
  forUsersText =
    settings:
    let
      secrets = forUsersSecrets settings;
    in
    concatLines (
      map (
        name:
        let
          secret = secrets.${name};
        in
        "${name}\t${pathText secret.file}\t${secret.mode}"
      ) (names secrets)
    );

  # ---- units to restart or reload when a secret changes ------------------------------------

  serviceName = unit: if builtins.match ".*\\..*" unit == null then "${unit}.service" else unit;

  # { "<name>": { "restart": [units], "reload": [units] } } for `secretfs activate --json`'s
  # "changed" list, which names secrets and templates alike. A name that is both a secret and a
  # template (a problem) gets the units of both.
  unitsBySecret =
    settings:
    let
      unitsOf = builtins.mapAttrs (_: entry: {
        restart = map serviceName entry.restartUnits;
        reload = map serviceName entry.reloadUnits;
      });
    in
    builtins.zipAttrsWith
      (_: units: {
        restart = concatMap (entry: entry.restart) units;
        reload = concatMap (entry: entry.reload) units;
      })
      [
        (unitsOf (servedSecrets settings))
        (unitsOf (templatesOf settings))
      ];

  unitsJson = settings: builtins.toJSON (unitsBySecret settings);

  # Every unit some secret or template names, for the After=/Wants= ordering.
  consumerUnits =
    settings:
    unique (
      concatMap (secret: map serviceName (secret.restartUnits ++ secret.reloadUnits)) (
        builtins.attrValues (withDefaults settings.secrets) ++ builtins.attrValues (templatesOf settings)
      )
    );

  # ---- problems: what `secretfs check` would refuse, and what Nix can know besides ---------

  # The same rules as the daemon's, in the same order, so the messages agree.
  nameProblem =
    name:
    let
      segments = splitOn "/" name;
      badSegment = filter (
        segment:
        builtins.elem segment [
          ""
          "."
          ".."
        ]
        || builtins.stringLength segment > maxSegmentBytes
      ) segments;
      describe =
        segment:
        if segment == "" then
          "an empty segment (`//`)"
        else if segment == "." || segment == ".." then
          "a `${segment}` segment"
        else
          "a segment of ${toString (builtins.stringLength segment)} bytes,"
          + " longer than ${toString maxSegmentBytes}";
    in
    if name == "" then
      "name is empty"
    else if hasControl name then
      "name has a control character"
    else if hasBidiControl name then
      "name has a bidirectional control character"
    else if startsWith "/" name then
      "name is absolute (starts with `/`)"
    else if endsWith "/" name then
      "name ends with `/`"
    else if badSegment != [ ] then
      "name has ${describe (builtins.head badSegment)}"
    else
      null;

  # 3 or 4 octal digits that grant read only.
  modeProblem =
    mode:
    let
      digits = builtins.match "0?([0-7])([0-7])([0-7])" mode;
      readOnly = digit: builtins.elem digit [ "0" "4" ];
    in
    if !(builtins.isString mode) || builtins.match "[0-7]{3,4}" mode == null then
      "mode `${toString mode}` is not 3 or 4 octal digits"
    else if digits == null || !(all readOnly digits) then
      "mode `${mode}` grants more than read (write, execute, setuid, setgid and sticky are refused)"
    else
      null;

  isRoot = account: account == "root" || account == 0 || account == "0";

  # What secrets and templates share: mode, path and units.
  servingProblems =
    settings: name: entry:
    let
      modePart = modeProblem entry.mode;
      units = entry.restartUnits ++ entry.reloadUnits;
      notService = filter (unit: !(endsWith ".service" (serviceName unit))) units;
    in
    (if modePart == null then [ ] else [ modePart ])
    ++ (if entry.path != null && !(startsWith "/" entry.path) then
      [ "path `${entry.path}` is not absolute" ]
    else
      [ ])
    ++ (
      if
        entry.path != null
        && entry.path != servedPath settings name entry
        && startsWith (settings.mountPoint + "/") entry.path
      then
        [
          ("path `${entry.path}` is inside the mount point ${settings.mountPoint},"
            + " which is read-only")
        ]
      else
        [ ]
    )
    ++ (if entry.path != null && hasControl entry.path then [ "path has a control character" ] else [ ])
    ++ map (
      unit: "unit `${unit}` is not a service (restartUnits and reloadUnits name services)"
    ) notService;

  namePart =
    name:
    let
      problem = nameProblem name;
    in
    if problem == null then [ ] else [ "${problem}; secretfs would refuse it" ];

  secretProblems =
    settings: name: secret:
    let
      option = "services.secretfs.secrets.${builtins.toJSON name}";
      units = secret.restartUnits ++ secret.reloadUnits;
    in
    map (message: "${option}: ${message}") (
      namePart name
      ++ sourceProblems settings secret
      ++ servingProblems settings name secret
      ++ (
        if secret.neededForUsers && !(isRoot secret.owner) then
          [
            ("neededForUsers secrets are decrypted before users exist,"
              + " so owner must be root, not `${toString secret.owner}`")
          ]
        else
          [ ]
      )
      ++ (
        if secret.neededForUsers && secret.group != null && !(isRoot secret.group) then
          [
            ("neededForUsers secrets are decrypted before groups exist,"
              + " so group must be root, not `${toString secret.group}`")
          ]
        else
          [ ]
      )
      ++ (
        if secret.neededForUsers && units != [ ] then
          [
            ("neededForUsers secrets are not served by the daemon,"
              + " so restartUnits and reloadUnits do not apply")
          ]
        else
          [ ]
      )
    );

  # Where a secret's value comes from: an age `file`, a 1Password `source`, or both.
  sourceProblems =
    settings: secret:
    let
      fromOnePassword = secret.source != null && secret.file == null;
      noToken = (onepasswordOf settings).tokenFile == null;
    in
    (
      if secret.file == null && secret.source == null then
        [
          ("neither `file` nor `source` is set"
            + " (an age file to serve, or an op:// reference to read)")
        ]
      else
        [ ]
    )
    ++ (
      if secret.source != null && !(startsWith "op://" secret.source) then
        [
          ("source `${secret.source}` is not a 1Password reference:"
            + " op://<vault>/<item>[/<section>]/<field>")
        ]
      else
        [ ]
    )
    # Users are created during activation, before the network and secretfs.service are up:
    # nothing could read 1Password then, and the manifest that `secretfs sync` reads does not
    # hold these secrets either.
    ++ (
      if secret.neededForUsers && secret.source != null then
        [
          ("neededForUsers secrets cannot have a `source`: they are decrypted during activation,"
            + " before users are created and before the network and secretfs.service are up;"
            + " give an age `file` (`secretfs sync REFERENCE FILE` writes one from 1Password)")
        ]
      else
        [ ]
    )
    ++ (
      if !secret.neededForUsers && fromOnePassword && noToken then
        [
          ("`source` without `file` is read from 1Password by secretfs.service,"
            + " which needs services.secretfs.onepassword.tokenFile")
        ]
      else
        [ ]
    );

  # The token file and the durations of `[onepassword]`.
  onepasswordProblems =
    settings:
    let
      onepassword = onepasswordOf settings;
      option = "services.secretfs.onepassword";
      tokenFile = toString onepassword.tokenFile;
      notDuration = key: builtins.match "[0-9]+(ms|s|m|h|d)" onepassword.${key} == null;
    in
    (
      if onepassword.tokenFile == null then
        [ ]
      else if !(startsWith "/" tokenFile) then
        [ "${option}.tokenFile `${tokenFile}` is not an absolute path" ]
      else if startsWith (builtins.storeDir + "/") tokenFile then
        [
          ("${option}.tokenFile `${tokenFile}` is in the Nix store, which every user can read;"
            + " keep the token in a root-only file outside it (install -m 600 -o root)")
        ]
      else
        [ ]
    )
    ++ map (
      key:
      "${option}.${key} `${onepassword.${key}}` is not a duration:"
      + " an integer followed by ms, s, m, h or d"
    ) (filter notDuration [ "refresh" "timeout" "retry" ]);

  # The secrets `{{ NAME }}` placeholders in `text` name, each once. A scan, not the daemon's
  # parser: it ignores `\{{` and takes NAME up to a `|`, `}` or line end, blanks trimmed. Good
  # enough to find names the daemon will not have, nothing more.
  placeholderNames =
    text:
    let
      matches = filter builtins.isList (builtins.split "(\\\\?)\\{\\{([^|}\n]*)" text);
      unescaped = filter (match: builtins.head match == "") matches;
      trim = inside: builtins.match "[ \t]*([^ \t].*[^ \t]|[^ \t])[ \t]*" inside;
      trimmed = map (match: trim (builtins.elemAt match 1)) unescaped;
    in
    unique (map builtins.head (filter (found: found != null) trimmed));

  # Placeholders are checked by `secretfs check` and on activation, where the secrets they name
  # are known to have been accepted. Only a `content` placeholder that names a neededForUsers
  # secret is refused here, since the daemon would call it a secret that does not exist.
  forUsersPlaceholderProblems =
    settings: entry:
    let
      forUsers = forUsersSecrets settings;
      inserted = if entry.content == null then [ ] else placeholderNames entry.content;
    in
    map (
      secret:
      "a placeholder inserts `${secret}`, a neededForUsers secret; those are decrypted before"
      + " users exist and are not served by the mount, so no template can insert them"
    ) (filter (secret: forUsers ? ${secret}) inserted);

  templateProblems =
    settings: name: entry:
    map (message: "services.secretfs.templates.${builtins.toJSON name}: ${message}") (
      namePart name
      ++ (
        if entry.content != null && entry.file != null then
          [ "`content` and `file` are both set; a template takes its text from one of them" ]
        else if entry.content == null && entry.file == null then
          [ "neither `content` nor `file` is set (the template's text)" ]
        else
          [ ]
      )
      ++ (
        if settings.secrets ? ${name} then
          [ "`${name}` is also a secret; a name serves one file" ]
        else
          [ ]
      )
      ++ servingProblems settings name entry
      ++ forUsersPlaceholderProblems settings entry
    );

  # `a` and `a/b` cannot both exist: `a` would be a file and a directory. Only pairs for which
  # `counts` holds are named, under `option`.
  conflictProblems =
    option: counts: secrets:
    let
      all' = names secrets;
      # `a/b/c` lies in the folders `a` and `a/b`.
      folders =
        name:
        let
          segments = splitOn "/" name;
          prefix = count: builtins.genList (j: builtins.elemAt segments j) count;
        in
        builtins.genList (i: builtins.concatStringsSep "/" (prefix (i + 1))) (length segments - 1);
    in
    concatMap (
      name:
      map (
        folder:
        "${option}: `${folder}` and `${name}` conflict:"
        + " `${folder}` would be both a file and a directory"
      ) (filter (folder: secrets ? ${folder} && counts folder name) (folders name))
    ) all';

  duplicateLinkProblems =
    settings:
    let
      all' = links settings;
      paths = map (link: link.path) all';
      templates = templatesOf settings;
      withTemplate = path: any (link: link.path == path && templates ? ${link.name}) all';
    in
    map (
      path:
      if withTemplate path then
        "services.secretfs.templates: more than one secret or template has path `${path}`"
      else
        "services.secretfs.secrets: more than one secret has path `${path}`"
    ) (filter (path: length (filter (other: other == path) paths) > 1) (unique paths));

  problems =
    settings:
    let
      secrets = withDefaults settings.secrets;
      templates = templatesOf settings;
      always = _: _: true;
      withTemplate = folder: name: templates ? ${folder} || templates ? ${name};
    in
    concatMap (name: secretProblems settings name secrets.${name}) (names secrets)
    ++ concatMap (name: templateProblems settings name templates.${name}) (names templates)
    ++ conflictProblems "services.secretfs.secrets" always (servedSecrets settings)
    ++ conflictProblems "services.secretfs.secrets" always (forUsersSecrets settings)
    ++ conflictProblems "services.secretfs.templates" withTemplate (
      servedSecrets settings // templates
    )
    ++ duplicateLinkProblems settings
    ++ onepasswordProblems settings
    ++ (
      if settings.identityPaths == [ ] then
        [
          ("services.secretfs.identityPaths is empty: secretfs needs at least one identity"
            + " (an age key file or an ssh ed25519 private key) to decrypt secrets")
        ]
      else
        [ ]
    )
    ++ (
      if settings.keepGenerations < minKeepGenerations then
        [
          ("services.secretfs.keepGenerations is ${toString settings.keepGenerations},"
            + " at least ${toString minKeepGenerations} are kept")
        ]
      else
        [ ]
    )
    ++ map (
      option: "services.secretfs.${option} `${toString settings.${option}}` is not an absolute path"
    ) (
      filter (option: !(startsWith "/" (toString settings.${option}))) [
        "mountPoint"
        "stateDir"
      ]
    );
in
{
  inherit
    forUsersDir
    toml
    servedSecrets
    templatesOf
    forUsersSecrets
    forUsersText
    servedPath
    links
    linksText
    unitsBySecret
    unitsJson
    consumerUnits
    nameProblem
    modeProblem
    problems
    ;
}
