# Writes OUT, a C file defining vdgx_bridge_openapi() that returns the text of IN.
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT} "/* generated from openapi.json by embed.cmake */\n"
  "static const char s_doc [] = {${bytes} 0};\n"
  "const char *vdgx_bridge_openapi (void);\n"
  "const char *vdgx_bridge_openapi (void) { return s_doc; }\n")
