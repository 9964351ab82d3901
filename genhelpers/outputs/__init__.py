"""What a run leaves: images, grids, clips (MP4/GIF/strip), meshes (marching cubes, PLY/OBJ/GLB), sidecars with
their metadata, CLIP scores, the exploration panel. Knows arrays, pictures and meshes, never a model's class."""
