# nn: files are listed here by the area's owner (see CMakeLists.txt for the lists).
